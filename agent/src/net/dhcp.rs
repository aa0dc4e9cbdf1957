//! The DHCPv4 server of a tenant network on a node: it answers each VM with exactly its
//! port's fixed IP (no pool, no guessing), as Neutron's DHCP agent does.
//!
//! Tenant bridges carry no IP address in the node's namespace (two projects may use the
//! same CIDR), so the server cannot use a UDP socket: it reads requests from an
//! `AF_PACKET` socket bound to the bridge and writes whole Ethernet + IPv4 + UDP frames
//! back. DHCP messages themselves are encoded and decoded by `dhcproto`.

use std::collections::HashMap;
use std::io::{self, Read};
use std::net::Ipv4Addr;
use std::os::fd::AsRawFd;
use std::sync::{Arc, PoisonError, RwLock};
use std::time::Duration;

use dhcproto::v4::{DhcpOption, HType, Message, MessageType, Opcode, OptionCode};
use dhcproto::{Decodable, Encodable};
use ipnet::Ipv4Net;
use nix::sys::socket::LinkAddr;
use socket2::{Domain, Protocol, SockFilter, Socket, Type};
use tokio::io::unix::AsyncFd;
use tokio::task::JoinHandle;
use yunji_common::agent_api::{NetworkSpec, PortSpec};

use super::parse_mac;

/// An Ethernet hardware address.
pub type MacAddr = [u8; 6];

/// How long a lease lasts (option 51): one day, as Neutron's default.
pub const LEASE_SECS: u32 = 86_400;

const SERVER_PORT: u16 = 67;
const CLIENT_PORT: u16 = 68;
const ETHERTYPE_IPV4: u16 = 0x0800;
const IPPROTO_UDP: u8 = 17;
const ETH_HEADER_LEN: usize = 14;
const IPV4_HEADER_LEN: usize = 20;
const UDP_HEADER_LEN: usize = 8;
/// BOOTP's minimum message size; some older clients drop shorter replies.
const MIN_BOOTP_LEN: usize = 300;
const BROADCAST_MAC: MacAddr = [0xff; 6];

/// What one VM is told: exactly its port's address on the subnet, and the subnet's
/// gateway, DNS servers, host routes and MTU.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Lease {
    pub mac: MacAddr,
    pub ip: Ipv4Addr,
    pub prefix_len: u8,
    pub gateway: Option<Ipv4Addr>,
    pub dns: Vec<Ipv4Addr>,
    /// Host routes (destination, next hop), sent as classless static routes (option 121).
    pub routes: Vec<(Ipv4Net, Ipv4Addr)>,
    pub mtu: Option<u16>,
    pub hostname: Option<String>,
}

/// The leases one server answers from, shared with the agent, which replaces them
/// wholesale whenever the scheduler pushes a new network spec. Clones share the table.
#[derive(Debug, Clone, Default)]
pub struct LeaseTable {
    leases: Arc<RwLock<Arc<HashMap<MacAddr, Lease>>>>,
}

impl LeaseTable {
    pub fn new(leases: impl IntoIterator<Item = Lease>) -> Self {
        let table = Self::default();
        table.replace(leases);
        table
    }

    /// Replaces every lease at once; requests in flight see the old or the new table,
    /// never a mix.
    pub fn replace(&self, leases: impl IntoIterator<Item = Lease>) {
        let map: HashMap<MacAddr, Lease> = leases.into_iter().map(|l| (l.mac, l)).collect();
        *self.leases.write().unwrap_or_else(PoisonError::into_inner) = Arc::new(map);
    }

    pub fn lookup(&self, mac: &MacAddr) -> Option<Lease> {
        self.snapshot().get(mac).cloned()
    }

    pub fn len(&self) -> usize {
        self.snapshot().len()
    }

    pub fn is_empty(&self) -> bool {
        self.len() == 0
    }

    fn snapshot(&self) -> Arc<HashMap<MacAddr, Lease>> {
        self.leases
            .read()
            .unwrap_or_else(PoisonError::into_inner)
            .clone()
    }
}

/// Why a DHCP server could not start, or a subnet's leases could not be derived.
#[derive(Debug, thiserror::Error)]
pub enum DhcpError {
    #[error("cannot list the network devices to find {device}")]
    ListDevices {
        device: String,
        #[source]
        source: nix::Error,
    },
    #[error("no network device named {device} in this namespace")]
    NoSuchDevice { device: String },
    #[error("cannot open a packet socket for {device}")]
    Socket {
        device: String,
        #[source]
        source: io::Error,
    },
    #[error("cannot attach the DHCP packet filter to the socket of {device}")]
    Filter {
        device: String,
        #[source]
        source: io::Error,
    },
    #[error("cannot bind the packet socket to {device}")]
    Bind {
        device: String,
        #[source]
        source: nix::Error,
    },
    #[error("cannot register the packet socket of {device} with the runtime")]
    Register {
        device: String,
        #[source]
        source: io::Error,
    },
    #[error("subnet {subnet}: {problem}")]
    Subnet { subnet: String, problem: String },
}

/// A DHCP server running on one bridge. Dropping it (or [`DhcpServer::stop`]) ends the
/// task and closes its socket.
pub struct DhcpServer {
    device: String,
    task: JoinHandle<()>,
}

impl DhcpServer {
    /// Starts answering DHCP on `ifname` (a bridge of this thread's network namespace),
    /// identifying itself as `server_ip` (the subnet's gateway, or its first address when
    /// it has none). Must be called inside a tokio runtime. Replies carry the bridge's MAC
    /// as read now, so give bridges a fixed MAC (a Linux bridge otherwise takes its lowest
    /// port's). Looking the device up is one short netlink dump (`getifaddrs`), done
    /// synchronously.
    pub fn spawn(ifname: &str, server_ip: Ipv4Addr, leases: LeaseTable) -> Result<Self, DhcpError> {
        let link = link_address(ifname)?;
        let server_mac = link.addr().unwrap_or_default();
        let socket = open_packet_socket(ifname, &link)?;
        // Deprecated as unsound in general because the fd could be closed or swapped under
        // the registration; the socket2::Socket owns its fd and is never replaced here.
        #[allow(deprecated)]
        let socket = AsyncFd::new(socket).map_err(|source| DhcpError::Register {
            device: ifname.to_string(),
            source,
        })?;
        let responder = Responder {
            server_ip,
            server_mac,
        };
        let device = ifname.to_string();
        tracing::info!(%device, %server_ip, leases = leases.len(), "DHCP server started");
        let task = tokio::spawn(serve(socket, device.clone(), responder, leases));
        Ok(Self { device, task })
    }

    pub fn device(&self) -> &str {
        &self.device
    }

    /// Ends the task and waits until its socket is closed.
    pub async fn stop(mut self) {
        self.task.abort();
        let _ = (&mut self.task).await;
        tracing::info!(device = %self.device, "DHCP server stopped");
    }
}

impl Drop for DhcpServer {
    fn drop(&mut self) {
        self.task.abort();
    }
}

/// The DHCP side of one IPv4 subnet: who the server says it is and what it hands out.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct SubnetDhcp {
    pub server_ip: Ipv4Addr,
    pub leases: Vec<Lease>,
}

/// Derives the server identity and leases of `subnet_id` of `network` from the ports the
/// node carries. `None` when the subnet is IPv6 or has DHCP disabled. A port with an
/// unreadable MAC or address is skipped (and logged) rather than failing the subnet.
pub fn subnet_dhcp(
    network: &NetworkSpec,
    subnet_id: &str,
    ports: &[PortSpec],
) -> Result<Option<SubnetDhcp>, DhcpError> {
    let problem = |problem: String| DhcpError::Subnet {
        subnet: subnet_id.to_string(),
        problem,
    };
    let subnet = network
        .subnets
        .iter()
        .find(|s| s.id == subnet_id)
        .ok_or_else(|| problem(format!("not a subnet of network {}", network.id)))?;
    if !subnet.enable_dhcp || subnet.cidr.contains(':') {
        return Ok(None);
    }
    let cidr: Ipv4Net = subnet
        .cidr
        .parse()
        .map_err(|_| problem(format!("invalid IPv4 CIDR {:?}", subnet.cidr)))?;
    let gateway = subnet
        .gateway_ip
        .as_deref()
        .map(|gw| {
            gw.parse::<Ipv4Addr>()
                .map_err(|_| problem(format!("invalid gateway {gw:?}")))
        })
        .transpose()?;
    let dns = subnet
        .dns
        .iter()
        .filter(|d| !d.contains(':'))
        .map(|d| {
            d.parse::<Ipv4Addr>()
                .map_err(|_| problem(format!("invalid DNS server {d:?}")))
        })
        .collect::<Result<Vec<_>, _>>()?;
    let routes = subnet
        .host_routes
        .iter()
        .filter(|r| !r.destination.contains(':'))
        .map(|r| {
            let destination = r
                .destination
                .parse::<Ipv4Net>()
                .map_err(|_| problem(format!("invalid route destination {:?}", r.destination)))?;
            let nexthop = r
                .nexthop
                .parse::<Ipv4Addr>()
                .map_err(|_| problem(format!("invalid route next hop {:?}", r.nexthop)))?;
            Ok((destination.trunc(), nexthop))
        })
        .collect::<Result<Vec<_>, DhcpError>>()?;
    let mtu = u16::try_from(network.mtu).ok().filter(|mtu| *mtu >= 68);
    let server_ip = gateway.unwrap_or_else(|| first_address(cidr));

    let mut leases = Vec::new();
    for port in ports.iter().filter(|p| p.network_id == network.id) {
        let Some(mac) = parse_mac(&port.mac) else {
            tracing::warn!(port = %port.id, mac = %port.mac, "port MAC unreadable; no DHCP lease");
            continue;
        };
        let Some(address) = port.fixed_ips.iter().find(|a| a.subnet_id == subnet.id) else {
            continue;
        };
        let Ok(ip) = address.ip_address.parse::<Ipv4Addr>() else {
            tracing::warn!(port = %port.id, ip = %address.ip_address, "fixed IP unreadable; no DHCP lease");
            continue;
        };
        leases.push(Lease {
            mac,
            ip,
            prefix_len: cidr.prefix_len(),
            gateway,
            dns: dns.clone(),
            routes: routes.clone(),
            mtu,
            hostname: None,
        });
    }
    Ok(Some(SubnetDhcp { server_ip, leases }))
}

fn first_address(cidr: Ipv4Net) -> Ipv4Addr {
    let network = u32::from(cidr.network());
    if cidr.prefix_len() >= 31 {
        Ipv4Addr::from(network)
    } else {
        Ipv4Addr::from(network + 1)
    }
}

/// The device's link-layer address (index and MAC) as the kernel reports it, which is
/// also what binds a packet socket to it.
fn link_address(device: &str) -> Result<LinkAddr, DhcpError> {
    let interfaces = nix::ifaddrs::getifaddrs().map_err(|source| DhcpError::ListDevices {
        device: device.to_string(),
        source,
    })?;
    interfaces
        .filter(|i| i.interface_name == device)
        .find_map(|i| i.address.and_then(|a| a.as_link_addr().copied()))
        .ok_or_else(|| DhcpError::NoSuchDevice {
            device: device.to_string(),
        })
}

/// A non-blocking packet socket receiving only IPv4 on `link`'s device, filtered in the
/// kernel down to UDP datagrams for port 67.
fn open_packet_socket(device: &str, link: &LinkAddr) -> Result<Socket, DhcpError> {
    let ipv4 = Protocol::from(i32::from(ETHERTYPE_IPV4.to_be()));
    let socket =
        Socket::new(Domain::PACKET, Type::RAW.nonblocking(), Some(ipv4)).map_err(|source| {
            DhcpError::Socket {
                device: device.to_string(),
                source,
            }
        })?;
    // The filter also checks the device, because until bind() the socket hears IPv4
    // from every device in the namespace.
    let ifindex = u32::try_from(link.ifindex()).unwrap_or(u32::MAX);
    socket
        .attach_filter(
            &dhcp_request_filter(ifindex).map(|(code, jt, jf, k)| SockFilter::new(code, jt, jf, k)),
        )
        .map_err(|source| DhcpError::Filter {
            device: device.to_string(),
            source,
        })?;
    // The address from getifaddrs has protocol 0, which keeps the socket's (IPv4).
    nix::sys::socket::bind(socket.as_raw_fd(), link).map_err(|source| DhcpError::Bind {
        device: device.to_string(),
        source,
    })?;
    Ok(socket)
}

/// One classic BPF instruction: (code, jump if true, jump if false, k).
type BpfInstruction = (u16, u8, u8, u32);

const LD_W_ABS: u16 = 0x20;
const LD_H_ABS: u16 = 0x28;
const LD_B_ABS: u16 = 0x30;
const LD_H_IND: u16 = 0x48;
const LDX_B_MSH: u16 = 0xb1;
const JEQ_K: u16 = 0x15;
const JSET_K: u16 = 0x45;
const RET_K: u16 = 0x06;
/// SKF_AD_OFF + SKF_AD_IFINDEX: the Linux extension that loads the receiving device.
const ANCILLARY_IFINDEX: u32 = 0xffff_f000 + 8;

/// Classic BPF: accept unfragmented IPv4 UDP to port 67 arriving on `ifindex`, drop the
/// rest before it is copied to user space. Every failed test jumps to the final drop.
fn dhcp_request_filter(ifindex: u32) -> [BpfInstruction; 13] {
    [
        (LD_W_ABS, 0, 0, ANCILLARY_IFINDEX),
        (JEQ_K, 0, 10, ifindex),
        (LD_H_ABS, 0, 0, 12), // EtherType
        (JEQ_K, 0, 8, u32::from(ETHERTYPE_IPV4)),
        (LD_B_ABS, 0, 0, 23), // IP protocol
        (JEQ_K, 0, 6, u32::from(IPPROTO_UDP)),
        (LD_H_ABS, 0, 0, 20), // flags and fragment offset
        (JSET_K, 4, 0, 0x3fff),
        (LDX_B_MSH, 0, 0, 14), // X = IP header length
        (LD_H_IND, 0, 0, 16),  // UDP destination port
        (JEQ_K, 0, 1, u32::from(SERVER_PORT)),
        (RET_K, 0, 0, 0xffff),
        (RET_K, 0, 0, 0),
    ]
}

async fn serve(socket: AsyncFd<Socket>, device: String, responder: Responder, leases: LeaseTable) {
    let mut buf = vec![0u8; 65_536];
    loop {
        let mut ready = match socket.readable().await {
            Ok(ready) => ready,
            Err(error) => {
                tracing::error!(%device, %error, "DHCP socket failed; server stopped");
                return;
            }
        };
        let received = ready.try_io(|s| {
            let mut socket: &Socket = s.get_ref();
            socket.read(&mut buf)
        });
        let len = match received {
            Err(_would_block) => continue,
            Ok(Ok(len)) => len,
            Ok(Err(error)) => {
                // ENETDOWN while the bridge is down, for instance: not fatal.
                tracing::warn!(%device, %error, "receiving on the DHCP socket");
                tokio::time::sleep(Duration::from_millis(100)).await;
                continue;
            }
        };
        let Some(reply) = responder.respond(&buf[..len], &leases) else {
            continue;
        };
        if let Err(error) = send_frame(&socket, &reply).await {
            tracing::warn!(%device, %error, "sending a DHCP reply");
        }
    }
}

async fn send_frame(socket: &AsyncFd<Socket>, frame: &[u8]) -> io::Result<()> {
    loop {
        let mut ready = socket.writable().await?;
        match ready.try_io(|s| s.get_ref().send(frame)) {
            Err(_would_block) => continue,
            Ok(result) => return result.map(|_| ()),
        }
    }
}

/// The protocol logic, free of sockets: one request frame in, at most one reply frame out.
struct Responder {
    server_ip: Ipv4Addr,
    server_mac: MacAddr,
}

/// Where a reply goes (RFC 2131 4.1, for clients on the server's own link).
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
enum Destination {
    Broadcast,
    Unicast { mac: MacAddr, ip: Ipv4Addr },
}

impl Responder {
    fn respond(&self, frame: &[u8], leases: &LeaseTable) -> Option<Vec<u8>> {
        let payload = dhcp_payload(frame)?;
        let payload = keep_read_options(payload)?;
        // Belt and braces: whatever dhcproto does with a hostile message, the server lives.
        let decoded = std::panic::catch_unwind(|| Message::from_bytes(&payload));
        let request = match decoded {
            Ok(Ok(request)) => request,
            Ok(Err(error)) => {
                tracing::debug!(%error, "ignoring an undecodable DHCP message");
                return None;
            }
            Err(_) => {
                tracing::warn!("the DHCP decoder panicked on a request; ignored");
                return None;
            }
        };
        let (reply, destination) = self.answer(&request, leases)?;
        let mut payload = match reply.to_vec() {
            Ok(payload) => payload,
            Err(error) => {
                tracing::warn!(%error, "cannot encode a DHCP reply");
                return None;
            }
        };
        if payload.len() < MIN_BOOTP_LEN {
            payload.resize(MIN_BOOTP_LEN, 0);
        }
        let (dest_mac, dest_ip) = match destination {
            Destination::Broadcast => (BROADCAST_MAC, Ipv4Addr::BROADCAST),
            Destination::Unicast { mac, ip } => (mac, ip),
        };
        Some(frame_udp(
            (self.server_mac, self.server_ip, SERVER_PORT),
            (dest_mac, dest_ip, CLIENT_PORT),
            &payload,
        ))
    }

    fn answer(&self, request: &Message, leases: &LeaseTable) -> Option<(Message, Destination)> {
        // Relayed requests belong to another link; hlen is checked before chaddr(),
        // which would panic on a length above 16.
        if request.opcode() != Opcode::BootRequest
            || request.htype() != HType::Eth
            || request.hlen() != 6
            || !request.giaddr().is_unspecified()
        {
            return None;
        }
        let mac: MacAddr = request.chaddr().try_into().ok()?;
        let kind = request.opts().msg_type()?;
        let Some(lease) = leases.lookup(&mac) else {
            tracing::debug!(mac = %format_mac(&mac), ?kind, "DHCP request from a MAC without a lease");
            return None;
        };
        match kind {
            MessageType::Discover => Some(self.offer_or_ack(request, &lease, MessageType::Offer)),
            MessageType::Request => {
                if let Some(DhcpOption::ServerIdentifier(id)) =
                    request.opts().get(OptionCode::ServerIdentifier)
                    && *id != self.server_ip
                {
                    return None; // the client chose another server's offer
                }
                let requested = match request.opts().get(OptionCode::RequestedIpAddress) {
                    Some(DhcpOption::RequestedIpAddress(ip)) => *ip,
                    _ => request.ciaddr(),
                };
                if requested == lease.ip {
                    Some(self.offer_or_ack(request, &lease, MessageType::Ack))
                } else {
                    tracing::info!(mac = %format_mac(&mac), %requested, leased = %lease.ip, "DHCP NAK");
                    Some(self.nak(request))
                }
            }
            MessageType::Inform => {
                // The VM configured its address itself and asks only for the options.
                let (mut reply, destination) = self.offer_or_ack(request, &lease, MessageType::Ack);
                reply.set_yiaddr(Ipv4Addr::UNSPECIFIED);
                reply.opts_mut().remove(OptionCode::AddressLeaseTime);
                Some((reply, destination))
            }
            MessageType::Decline => {
                tracing::warn!(mac = %format_mac(&mac), ip = %lease.ip, "a VM declined its address: something else uses it");
                None
            }
            MessageType::Release => {
                tracing::debug!(mac = %format_mac(&mac), "DHCP release");
                None
            }
            _ => None,
        }
    }

    fn offer_or_ack(
        &self,
        request: &Message,
        lease: &Lease,
        kind: MessageType,
    ) -> (Message, Destination) {
        let mut reply = self.reply_to(request);
        reply.set_yiaddr(lease.ip);
        if kind == MessageType::Ack {
            reply.set_ciaddr(request.ciaddr());
        }
        let opts = reply.opts_mut();
        opts.insert(DhcpOption::MessageType(kind));
        opts.insert(DhcpOption::ServerIdentifier(self.server_ip));
        opts.insert(DhcpOption::AddressLeaseTime(LEASE_SECS));
        let mask = Ipv4Net::new(lease.ip, lease.prefix_len.min(32))
            .map(|net| net.netmask())
            .unwrap_or(Ipv4Addr::BROADCAST);
        opts.insert(DhcpOption::SubnetMask(mask));
        if let Some(gateway) = lease.gateway {
            opts.insert(DhcpOption::Router(vec![gateway]));
        }
        if !lease.dns.is_empty() {
            opts.insert(DhcpOption::DomainNameServer(lease.dns.clone()));
        }
        if let Some(hostname) = &lease.hostname {
            opts.insert(DhcpOption::Hostname(hostname.clone()));
        }
        if let Some(mtu) = lease.mtu {
            opts.insert(DhcpOption::InterfaceMtu(mtu));
        }
        if !lease.routes.is_empty() {
            opts.insert(DhcpOption::ClasslessStaticRoute(classless_routes(lease)));
        }
        let destination = if !request.ciaddr().is_unspecified() {
            Destination::Unicast {
                mac: lease.mac,
                ip: request.ciaddr(),
            }
        } else if request.flags().broadcast() {
            Destination::Broadcast
        } else {
            Destination::Unicast {
                mac: lease.mac,
                ip: lease.ip,
            }
        };
        (reply, destination)
    }

    fn nak(&self, request: &Message) -> (Message, Destination) {
        let mut reply = self.reply_to(request);
        reply.set_flags(request.flags().set_broadcast());
        let opts = reply.opts_mut();
        opts.insert(DhcpOption::MessageType(MessageType::Nak));
        opts.insert(DhcpOption::ServerIdentifier(self.server_ip));
        (reply, Destination::Broadcast)
    }

    fn reply_to(&self, request: &Message) -> Message {
        let mut reply = Message::new_with_id(
            request.xid(),
            Ipv4Addr::UNSPECIFIED,
            Ipv4Addr::UNSPECIFIED,
            Ipv4Addr::UNSPECIFIED,
            Ipv4Addr::UNSPECIFIED,
            request.chaddr(),
        );
        reply
            .set_opcode(Opcode::BootReply)
            .set_htype(HType::Eth)
            .set_flags(request.flags());
        reply
    }
}

/// Option 121 carries the default route too: a client that gets it ignores option 3
/// (RFC 3442).
fn classless_routes(lease: &Lease) -> Vec<(Ipv4Net, Ipv4Addr)> {
    let mut routes = lease.routes.clone();
    if let Some(gateway) = lease.gateway
        && !routes.iter().any(|(dest, _)| dest.prefix_len() == 0)
    {
        routes.push((Ipv4Net::default(), gateway));
    }
    routes
}

fn format_mac(mac: &MacAddr) -> String {
    mac.iter()
        .map(|b| format!("{b:02x}"))
        .collect::<Vec<_>>()
        .join(":")
}

fn be16(bytes: &[u8], at: usize) -> Option<u16> {
    Some(u16::from_be_bytes([*bytes.get(at)?, *bytes.get(at + 1)?]))
}

/// The UDP payload of an Ethernet frame when it is an unfragmented IPv4 UDP datagram to
/// the DHCP server port; `None` for anything else, however malformed.
fn dhcp_payload(frame: &[u8]) -> Option<&[u8]> {
    if be16(frame, 12)? != ETHERTYPE_IPV4 {
        return None;
    }
    let ip = frame.get(ETH_HEADER_LEN..)?;
    let first = *ip.first()?;
    let header_len = usize::from(first & 0x0f) * 4;
    if first >> 4 != 4 || header_len < IPV4_HEADER_LEN {
        return None;
    }
    let total_len = usize::from(be16(ip, 2)?);
    let fragmented = be16(ip, 6)? & 0x3fff != 0;
    if fragmented || *ip.get(9)? != IPPROTO_UDP || total_len < header_len {
        return None;
    }
    let udp = ip.get(header_len..total_len)?;
    if be16(udp, 2)? != SERVER_PORT {
        return None;
    }
    let udp_len = usize::from(be16(udp, 4)?);
    udp.get(UDP_HEADER_LEN..udp_len.max(UDP_HEADER_LEN))
        .filter(|_| udp_len >= UDP_HEADER_LEN)
}

/// One end of a UDP exchange on the link.
type UdpEndpoint = (MacAddr, Ipv4Addr, u16);

/// The request with only the options the server reads (message type, requested IP,
/// server identifier, each of its exact length), re-encoded; `None` when the fixed part,
/// the magic cookie or the option list is malformed. dhcproto's decoders assert on
/// hostile lengths (option 81 shorter than 3 bytes panics in debug builds), so a VM's
/// other options never reach it.
fn keep_read_options(payload: &[u8]) -> Option<Vec<u8>> {
    const OPTIONS_START: usize = 240; // BOOTP fixed fields, then the magic cookie
    const MAGIC_COOKIE: [u8; 4] = [99, 130, 83, 99];
    let fixed = payload.get(..OPTIONS_START)?;
    if fixed[236..] != MAGIC_COOKIE {
        return None;
    }
    let mut kept = fixed.to_vec();
    let mut at = OPTIONS_START;
    while let Some(&code) = payload.get(at) {
        match code {
            0 => {
                at += 1;
                continue;
            }
            255 => break,
            _ => {}
        }
        let len = usize::from(*payload.get(at + 1)?);
        let value = payload.get(at + 2..at + 2 + len)?;
        let read_len = match OptionCode::from(code) {
            OptionCode::MessageType => Some(1),
            OptionCode::RequestedIpAddress | OptionCode::ServerIdentifier => Some(4),
            _ => None,
        };
        if read_len == Some(len) {
            kept.extend_from_slice(&[code, value.len() as u8]);
            kept.extend_from_slice(value);
        }
        at += 2 + len;
    }
    kept.push(255);
    Some(kept)
}

/// A whole Ethernet + IPv4 + UDP frame, with both checksums.
fn frame_udp(source: UdpEndpoint, destination: UdpEndpoint, payload: &[u8]) -> Vec<u8> {
    let (source_mac, source_ip, source_port) = source;
    let (dest_mac, dest_ip, dest_port) = destination;
    let udp_len = UDP_HEADER_LEN + payload.len();
    let ip_len = IPV4_HEADER_LEN + udp_len;
    let mut frame = Vec::with_capacity(ETH_HEADER_LEN + ip_len);
    frame.extend_from_slice(&dest_mac);
    frame.extend_from_slice(&source_mac);
    frame.extend_from_slice(&ETHERTYPE_IPV4.to_be_bytes());

    let ip_start = frame.len();
    frame.extend_from_slice(&[0x45, 0x00]); // version 4, 20-byte header; DSCP 0
    frame.extend_from_slice(&(ip_len as u16).to_be_bytes());
    frame.extend_from_slice(&[0, 0, 0, 0]); // identification, flags, fragment offset
    frame.extend_from_slice(&[64, IPPROTO_UDP, 0, 0]); // TTL, protocol, checksum slot
    frame.extend_from_slice(&source_ip.octets());
    frame.extend_from_slice(&dest_ip.octets());
    let ip_checksum = internet_checksum(&frame[ip_start..]);
    frame[ip_start + 10..ip_start + 12].copy_from_slice(&ip_checksum.to_be_bytes());

    let udp_start = frame.len();
    frame.extend_from_slice(&source_port.to_be_bytes());
    frame.extend_from_slice(&dest_port.to_be_bytes());
    frame.extend_from_slice(&(udp_len as u16).to_be_bytes());
    frame.extend_from_slice(&[0, 0]); // checksum slot
    frame.extend_from_slice(payload);
    let mut pseudo = Vec::with_capacity(12 + udp_len);
    pseudo.extend_from_slice(&source_ip.octets());
    pseudo.extend_from_slice(&dest_ip.octets());
    pseudo.extend_from_slice(&[0, IPPROTO_UDP]);
    pseudo.extend_from_slice(&(udp_len as u16).to_be_bytes());
    pseudo.extend_from_slice(&frame[udp_start..]);
    // 0 means "no checksum" in UDP over IPv4, so a computed 0 is sent as its complement.
    let udp_checksum = match internet_checksum(&pseudo) {
        0 => 0xffff,
        sum => sum,
    };
    frame[udp_start + 6..udp_start + 8].copy_from_slice(&udp_checksum.to_be_bytes());
    frame
}

/// RFC 1071: the one's complement of the one's complement sum of 16-bit words.
fn internet_checksum(bytes: &[u8]) -> u16 {
    let mut sum: u32 = bytes
        .chunks(2)
        .map(|pair| u32::from(u16::from_be_bytes([pair[0], *pair.get(1).unwrap_or(&0)])))
        .sum();
    while sum > 0xffff {
        sum = (sum & 0xffff) + (sum >> 16);
    }
    !(sum as u16)
}

#[cfg(test)]
mod tests {
    use super::*;
    use dhcproto::v4::Flags;
    use yunji_common::agent_api::{HostRouteSpec, PortAddressSpec, SubnetSpec};

    const SERVER_IP: Ipv4Addr = Ipv4Addr::new(10, 7, 0, 1);
    const SERVER_MAC: MacAddr = [0x02, 0, 0, 0, 0x07, 0xfe];
    const CLIENT_MAC: MacAddr = [0x02, 0, 0, 0, 0x07, 0x01];
    const CLIENT_IP: Ipv4Addr = Ipv4Addr::new(10, 7, 0, 11);

    fn responder() -> Responder {
        Responder {
            server_ip: SERVER_IP,
            server_mac: SERVER_MAC,
        }
    }

    fn lease() -> Lease {
        Lease {
            mac: CLIENT_MAC,
            ip: CLIENT_IP,
            prefix_len: 24,
            gateway: Some(SERVER_IP),
            dns: vec![Ipv4Addr::new(10, 7, 0, 2), Ipv4Addr::new(198, 51, 100, 53)],
            routes: vec![(
                "192.168.50.0/24".parse().unwrap(),
                Ipv4Addr::new(10, 7, 0, 254),
            )],
            mtu: Some(1450),
            hostname: Some("vm-1".to_string()),
        }
    }

    fn client_message(kind: MessageType, mac: MacAddr) -> Message {
        let mut msg = Message::new_with_id(
            0x1234_5678,
            Ipv4Addr::UNSPECIFIED,
            Ipv4Addr::UNSPECIFIED,
            Ipv4Addr::UNSPECIFIED,
            Ipv4Addr::UNSPECIFIED,
            &mac,
        );
        msg.opts_mut().insert(DhcpOption::MessageType(kind));
        msg
    }

    fn request_for(ip: Ipv4Addr) -> Message {
        let mut msg = client_message(MessageType::Request, CLIENT_MAC);
        msg.opts_mut().insert(DhcpOption::RequestedIpAddress(ip));
        msg.opts_mut()
            .insert(DhcpOption::ServerIdentifier(SERVER_IP));
        msg
    }

    /// What a client sends: from 0.0.0.0:68 to the broadcast address, port 67.
    fn client_frame(msg: &Message) -> Vec<u8> {
        frame_udp(
            (CLIENT_MAC, Ipv4Addr::UNSPECIFIED, CLIENT_PORT),
            (BROADCAST_MAC, Ipv4Addr::BROADCAST, SERVER_PORT),
            &msg.to_vec().unwrap(),
        )
    }

    struct Reply {
        dest_mac: MacAddr,
        source_mac: MacAddr,
        source_ip: Ipv4Addr,
        dest_ip: Ipv4Addr,
        message: Message,
    }

    /// Checks the framing (EtherType, both checksums, ports, lengths) and decodes.
    fn parse_reply(frame: &[u8]) -> Reply {
        assert_eq!(be16(frame, 12), Some(ETHERTYPE_IPV4));
        let ip = &frame[ETH_HEADER_LEN..];
        assert_eq!(ip[0], 0x45);
        assert_eq!(ip[9], IPPROTO_UDP);
        assert_eq!(usize::from(be16(ip, 2).unwrap()), ip.len());
        assert_eq!(
            internet_checksum(&ip[..IPV4_HEADER_LEN]),
            0,
            "IPv4 header checksum"
        );
        let udp = &ip[IPV4_HEADER_LEN..];
        assert_eq!(be16(udp, 0), Some(SERVER_PORT));
        assert_eq!(be16(udp, 2), Some(CLIENT_PORT));
        assert_eq!(usize::from(be16(udp, 4).unwrap()), udp.len());
        let mut pseudo = ip[12..20].to_vec();
        pseudo.extend_from_slice(&[0, IPPROTO_UDP]);
        pseudo.extend_from_slice(&(udp.len() as u16).to_be_bytes());
        pseudo.extend_from_slice(udp);
        assert_eq!(internet_checksum(&pseudo), 0, "UDP checksum");
        assert!(udp.len() - UDP_HEADER_LEN >= MIN_BOOTP_LEN);
        Reply {
            dest_mac: frame[0..6].try_into().unwrap(),
            source_mac: frame[6..12].try_into().unwrap(),
            source_ip: Ipv4Addr::new(ip[12], ip[13], ip[14], ip[15]),
            dest_ip: Ipv4Addr::new(ip[16], ip[17], ip[18], ip[19]),
            message: Message::from_bytes(&udp[UDP_HEADER_LEN..]).unwrap(),
        }
    }

    fn answer(msg: &Message, table: &LeaseTable) -> Option<Reply> {
        responder()
            .respond(&client_frame(msg), table)
            .map(|frame| parse_reply(&frame))
    }

    #[test]
    fn discover_from_a_leased_mac_gets_an_offer_of_exactly_its_ip() {
        let table = LeaseTable::new([lease()]);
        let discover = client_message(MessageType::Discover, CLIENT_MAC);

        let reply = answer(&discover, &table).expect("an offer");

        assert_eq!(reply.dest_mac, CLIENT_MAC);
        assert_eq!(reply.source_mac, SERVER_MAC);
        assert_eq!(reply.source_ip, SERVER_IP);
        assert_eq!(reply.dest_ip, CLIENT_IP);
        let offer = reply.message;
        assert_eq!(offer.opcode(), Opcode::BootReply);
        assert_eq!(offer.xid(), 0x1234_5678);
        assert_eq!(offer.yiaddr(), CLIENT_IP);
        assert_eq!(offer.chaddr(), &CLIENT_MAC);
        let opts = offer.opts();
        assert_eq!(opts.msg_type(), Some(MessageType::Offer));
        assert_eq!(
            opts.get(OptionCode::ServerIdentifier),
            Some(&DhcpOption::ServerIdentifier(SERVER_IP))
        );
        assert_eq!(
            opts.get(OptionCode::AddressLeaseTime),
            Some(&DhcpOption::AddressLeaseTime(86_400))
        );
        assert_eq!(
            opts.get(OptionCode::SubnetMask),
            Some(&DhcpOption::SubnetMask(Ipv4Addr::new(255, 255, 255, 0)))
        );
        assert_eq!(
            opts.get(OptionCode::Router),
            Some(&DhcpOption::Router(vec![SERVER_IP]))
        );
        assert_eq!(
            opts.get(OptionCode::DomainNameServer),
            Some(&DhcpOption::DomainNameServer(lease().dns))
        );
        assert_eq!(
            opts.get(OptionCode::InterfaceMtu),
            Some(&DhcpOption::InterfaceMtu(1450))
        );
        assert_eq!(
            opts.get(OptionCode::Hostname),
            Some(&DhcpOption::Hostname("vm-1".to_string()))
        );
        assert_eq!(
            opts.get(OptionCode::ClasslessStaticRoute),
            Some(&DhcpOption::ClasslessStaticRoute(vec![
                (
                    "192.168.50.0/24".parse().unwrap(),
                    Ipv4Addr::new(10, 7, 0, 254)
                ),
                (Ipv4Net::default(), SERVER_IP),
            ]))
        );
    }

    #[test]
    fn offer_options_are_encoded_byte_for_byte() {
        let table = LeaseTable::new([lease()]);
        let frame = responder()
            .respond(
                &client_frame(&client_message(MessageType::Discover, CLIENT_MAC)),
                &table,
            )
            .unwrap();

        let dhcp = &frame[ETH_HEADER_LEN + IPV4_HEADER_LEN + UDP_HEADER_LEN..];

        assert_eq!(&dhcp[16..20], &CLIENT_IP.octets(), "yiaddr");
        assert_eq!(&dhcp[236..240], &[99, 130, 83, 99], "magic cookie");
        let options = &dhcp[240..];
        let find = |code: u8| -> &[u8] {
            let mut at = 0;
            while at + 1 < options.len() && options[at] != 255 {
                let len = usize::from(options[at + 1]);
                if options[at] == code {
                    return &options[at + 2..at + 2 + len];
                }
                at += 2 + len;
            }
            panic!("option {code} missing");
        };
        assert_eq!(find(53), &[2]);
        assert_eq!(find(1), &[255, 255, 255, 0]);
        assert_eq!(find(3), &[10, 7, 0, 1]);
        assert_eq!(find(6), &[10, 7, 0, 2, 198, 51, 100, 53]);
        assert_eq!(find(26), &1450u16.to_be_bytes());
        assert_eq!(find(51), &86_400u32.to_be_bytes());
        assert_eq!(find(54), &[10, 7, 0, 1]);
        assert_eq!(
            find(121),
            &[24, 192, 168, 50, 10, 7, 0, 254, 0, 10, 7, 0, 1]
        );
    }

    #[test]
    fn discover_with_the_broadcast_flag_is_answered_to_broadcast() {
        let table = LeaseTable::new([lease()]);
        let mut discover = client_message(MessageType::Discover, CLIENT_MAC);
        discover.set_flags(Flags::default().set_broadcast());

        let reply = answer(&discover, &table).unwrap();

        assert_eq!(reply.dest_mac, BROADCAST_MAC);
        assert_eq!(reply.dest_ip, Ipv4Addr::BROADCAST);
        assert_eq!(reply.message.yiaddr(), CLIENT_IP);
    }

    #[test]
    fn request_for_its_own_ip_is_acked() {
        let table = LeaseTable::new([lease()]);

        let ack = answer(&request_for(CLIENT_IP), &table).unwrap().message;

        assert_eq!(ack.opts().msg_type(), Some(MessageType::Ack));
        assert_eq!(ack.yiaddr(), CLIENT_IP);
    }

    #[test]
    fn request_for_another_ip_is_naked_by_broadcast() {
        let table = LeaseTable::new([lease()]);

        let reply = answer(&request_for(Ipv4Addr::new(10, 7, 0, 99)), &table).unwrap();

        assert_eq!(reply.message.opts().msg_type(), Some(MessageType::Nak));
        assert_eq!(reply.message.yiaddr(), Ipv4Addr::UNSPECIFIED);
        assert_eq!(reply.dest_mac, BROADCAST_MAC);
        assert_eq!(reply.dest_ip, Ipv4Addr::BROADCAST);
    }

    #[test]
    fn renewing_request_is_acked_by_unicast_to_its_address() {
        let table = LeaseTable::new([lease()]);
        let mut renew = client_message(MessageType::Request, CLIENT_MAC);
        renew.set_ciaddr(CLIENT_IP);

        let reply = answer(&renew, &table).unwrap();

        assert_eq!(reply.message.opts().msg_type(), Some(MessageType::Ack));
        assert_eq!(reply.message.ciaddr(), CLIENT_IP);
        assert_eq!(reply.dest_mac, CLIENT_MAC);
        assert_eq!(reply.dest_ip, CLIENT_IP);
    }

    #[test]
    fn request_naming_another_server_gets_no_answer() {
        let table = LeaseTable::new([lease()]);
        let mut request = request_for(CLIENT_IP);
        request
            .opts_mut()
            .insert(DhcpOption::ServerIdentifier(Ipv4Addr::new(10, 7, 0, 3)));

        assert!(answer(&request, &table).is_none());
    }

    #[test]
    fn inform_gets_options_without_a_lease() {
        let table = LeaseTable::new([lease()]);
        let mut inform = client_message(MessageType::Inform, CLIENT_MAC);
        inform.set_ciaddr(CLIENT_IP);

        let reply = answer(&inform, &table).unwrap().message;

        assert_eq!(reply.opts().msg_type(), Some(MessageType::Ack));
        assert_eq!(reply.yiaddr(), Ipv4Addr::UNSPECIFIED);
        assert!(reply.opts().get(OptionCode::AddressLeaseTime).is_none());
        assert!(reply.opts().get(OptionCode::Router).is_some());
    }

    #[test]
    fn mac_without_a_lease_gets_no_answer() {
        let table = LeaseTable::new([lease()]);
        let stranger = [0x02, 0, 0, 0, 0x07, 0x99];

        assert!(answer(&client_message(MessageType::Discover, stranger), &table).is_none());
    }

    #[test]
    fn replaced_table_offers_the_new_address() {
        let table = LeaseTable::new([lease()]);
        let moved = Ipv4Addr::new(10, 7, 0, 42);

        table.replace([Lease {
            ip: moved,
            ..lease()
        }]);
        let offer = answer(&client_message(MessageType::Discover, CLIENT_MAC), &table).unwrap();

        assert_eq!(offer.message.yiaddr(), moved);
    }

    #[test]
    fn frames_that_are_not_dhcp_requests_are_ignored() {
        let table = LeaseTable::new([lease()]);
        let payload = client_message(MessageType::Discover, CLIENT_MAC)
            .to_vec()
            .unwrap();
        let to_dns = frame_udp(
            (CLIENT_MAC, CLIENT_IP, 5353),
            (SERVER_MAC, SERVER_IP, 53),
            &payload,
        );
        let mut ipv6 = client_frame(&client_message(MessageType::Discover, CLIENT_MAC));
        ipv6[12..14].copy_from_slice(&0x86ddu16.to_be_bytes());
        let mut fragment = client_frame(&client_message(MessageType::Discover, CLIENT_MAC));
        fragment[ETH_HEADER_LEN + 6] = 0x20; // more fragments
        let mut offer_from_a_client = client_message(MessageType::Discover, CLIENT_MAC);
        offer_from_a_client.set_opcode(Opcode::BootReply);

        for frame in [to_dns, ipv6, fragment, client_frame(&offer_from_a_client)] {
            assert!(responder().respond(&frame, &table).is_none());
        }
    }

    #[test]
    fn malformed_frames_never_panic() {
        let table = LeaseTable::new([lease()]);
        let mut discover = client_message(MessageType::Discover, CLIENT_MAC);
        discover
            .opts_mut()
            .insert(DhcpOption::ParameterRequestList(vec![
                OptionCode::SubnetMask,
                OptionCode::ClasslessStaticRoute,
            ]));
        let valid = client_frame(&discover);
        // Every truncation, with the IP and UDP lengths left claiming the whole frame.
        for len in 0..valid.len() {
            let _ = responder().respond(&valid[..len], &table);
        }
        // A chaddr length beyond 16, which dhcproto's chaddr() would slice past.
        let mut long_hlen = valid.clone();
        long_hlen[ETH_HEADER_LEN + IPV4_HEADER_LEN + UDP_HEADER_LEN + 2] = 200;
        assert!(responder().respond(&long_hlen, &table).is_none());
        // Deterministic random corruption of bytes past the UDP header.
        let mut state: u64 = 0x9e37_79b9_7f4a_7c15;
        let mut next = move || {
            state ^= state << 13;
            state ^= state >> 7;
            state ^= state << 17;
            state
        };
        let start = ETH_HEADER_LEN + IPV4_HEADER_LEN + UDP_HEADER_LEN;
        for _ in 0..5_000 {
            let mut frame = valid.clone();
            for _ in 0..(next() % 8 + 1) {
                let at = start + (next() as usize) % (frame.len() - start);
                frame[at] = next() as u8;
            }
            let _ = responder().respond(&frame, &table);
        }
    }

    #[test]
    fn hostile_options_are_dropped_before_decoding() {
        let table = LeaseTable::new([lease()]);
        let discover = client_message(MessageType::Discover, CLIENT_MAC);
        let mut frame = client_frame(&discover);
        // Client FQDN (81) with length 0, which dhcproto's decoder asserts against,
        // placed before the end option; the IP and UDP lengths grow to match.
        let end = frame.iter().rposition(|b| *b == 255).unwrap();
        frame.splice(end..end, [81, 0]);
        let ip_len = be16(&frame, ETH_HEADER_LEN + 2).unwrap() + 2;
        frame[ETH_HEADER_LEN + 2..ETH_HEADER_LEN + 4].copy_from_slice(&ip_len.to_be_bytes());
        let udp_at = ETH_HEADER_LEN + IPV4_HEADER_LEN;
        let udp_len = be16(&frame, udp_at + 4).unwrap() + 2;
        frame[udp_at + 4..udp_at + 6].copy_from_slice(&udp_len.to_be_bytes());

        let reply = responder().respond(&frame, &table).map(|f| parse_reply(&f));

        assert_eq!(reply.unwrap().message.yiaddr(), CLIENT_IP);
    }

    #[test]
    fn internet_checksum_matches_a_known_ipv4_header() {
        let header = [
            0x45, 0x00, 0x00, 0x73, 0x00, 0x00, 0x40, 0x00, 0x40, 0x11, 0x00, 0x00, 0xc0, 0xa8,
            0x00, 0x01, 0xc0, 0xa8, 0x00, 0xc7,
        ];

        assert_eq!(internet_checksum(&header), 0xb861);
    }

    /// Runs the classic BPF program as the kernel would, for the instructions it uses.
    fn run_filter(program: &[BpfInstruction], frame: &[u8], ifindex: u32) -> u32 {
        let load = |at: usize, size: usize| -> Option<u32> {
            let bytes = frame.get(at..at + size)?;
            Some(bytes.iter().fold(0u32, |acc, b| (acc << 8) | u32::from(*b)))
        };
        let (mut a, mut x, mut pc) = (0u32, 0u32, 0usize);
        loop {
            let (code, jt, jf, k) = program[pc];
            pc += 1;
            let loaded = match code {
                LD_W_ABS if k == ANCILLARY_IFINDEX => Some(ifindex),
                LD_H_ABS => load(k as usize, 2),
                LD_B_ABS => load(k as usize, 1),
                LD_H_IND => load((x + k) as usize, 2),
                LDX_B_MSH => {
                    x = (load(k as usize, 1).unwrap_or(0) & 0x0f) * 4;
                    continue;
                }
                JEQ_K | JSET_K => {
                    let taken = if code == JEQ_K { a == k } else { a & k != 0 };
                    pc += usize::from(if taken { jt } else { jf });
                    continue;
                }
                RET_K => return k,
                other => panic!("instruction {other:#x} not modelled"),
            };
            match loaded {
                Some(value) => a = value,
                None => return 0, // the kernel drops on an out-of-bounds load
            }
        }
    }

    #[test]
    fn filter_accepts_dhcp_requests_on_its_device_only() {
        let program = dhcp_request_filter(7);
        let discover = client_frame(&client_message(MessageType::Discover, CLIENT_MAC));
        let to_dns = frame_udp(
            (CLIENT_MAC, CLIENT_IP, 5353),
            (SERVER_MAC, SERVER_IP, 53),
            &[0; 40],
        );
        let mut fragment = discover.clone();
        fragment[ETH_HEADER_LEN + 7] = 0x10; // fragment offset
        let mut arp = discover.clone();
        arp[12..14].copy_from_slice(&0x0806u16.to_be_bytes());

        assert_ne!(run_filter(&program, &discover, 7), 0);
        assert_eq!(run_filter(&program, &discover, 8), 0);
        assert_eq!(run_filter(&program, &to_dns, 7), 0);
        assert_eq!(run_filter(&program, &fragment, 7), 0);
        assert_eq!(run_filter(&program, &arp, 7), 0);
        assert_eq!(run_filter(&program, &discover[..30], 7), 0);
    }

    fn network_spec() -> NetworkSpec {
        NetworkSpec {
            id: "net-1".into(),
            vni: 7,
            mtu: 1450,
            peers: Vec::new(),
            subnets: vec![
                SubnetSpec {
                    id: "sub-v4".into(),
                    cidr: "10.7.0.0/24".into(),
                    gateway_ip: Some("10.7.0.1".into()),
                    dns: vec!["10.7.0.2".into(), "fd00::53".into()],
                    host_routes: vec![HostRouteSpec {
                        destination: "192.168.50.0/24".into(),
                        nexthop: "10.7.0.254".into(),
                    }],
                    enable_dhcp: true,
                },
                SubnetSpec {
                    id: "sub-v6".into(),
                    cidr: "fd00:7::/64".into(),
                    gateway_ip: None,
                    dns: vec![],
                    host_routes: vec![],
                    enable_dhcp: true,
                },
                SubnetSpec {
                    id: "sub-nogw".into(),
                    cidr: "10.8.0.0/24".into(),
                    gateway_ip: None,
                    dns: vec![],
                    host_routes: vec![],
                    enable_dhcp: true,
                },
            ],
        }
    }

    fn port(id: &str, network: &str, mac: &str, subnet: &str, ip: &str) -> PortSpec {
        PortSpec {
            id: id.into(),
            network_id: network.into(),
            server_id: None,
            mac: mac.into(),
            fixed_ips: vec![PortAddressSpec {
                subnet_id: subnet.into(),
                ip_address: ip.into(),
            }],
            port_security_enabled: true,
            allowed_address_pairs: vec![],
            security_group_ids: vec![],
        }
    }

    #[test]
    fn subnet_dhcp_gives_each_port_of_the_subnet_its_fixed_ip() {
        let ports = [
            port("p1", "net-1", "02:00:00:00:07:01", "sub-v4", "10.7.0.11"),
            port("p2", "net-1", "02:00:00:00:07:02", "sub-nogw", "10.8.0.12"),
            port("p3", "net-2", "02:00:00:00:07:03", "sub-v4", "10.7.0.13"),
            port("p4", "net-1", "not-a-mac", "sub-v4", "10.7.0.14"),
        ];

        let dhcp = subnet_dhcp(&network_spec(), "sub-v4", &ports)
            .unwrap()
            .unwrap();

        assert_eq!(dhcp.server_ip, SERVER_IP);
        assert_eq!(
            dhcp.leases,
            vec![Lease {
                mac: CLIENT_MAC,
                ip: CLIENT_IP,
                prefix_len: 24,
                gateway: Some(SERVER_IP),
                dns: vec![Ipv4Addr::new(10, 7, 0, 2)],
                routes: vec![(
                    "192.168.50.0/24".parse().unwrap(),
                    Ipv4Addr::new(10, 7, 0, 254)
                )],
                mtu: Some(1450),
                hostname: None,
            }]
        );
    }

    #[test]
    fn subnet_without_gateway_is_served_from_its_first_address() {
        let dhcp = subnet_dhcp(&network_spec(), "sub-nogw", &[])
            .unwrap()
            .unwrap();

        assert_eq!(dhcp.server_ip, Ipv4Addr::new(10, 8, 0, 1));
    }

    #[test]
    fn ipv6_subnet_has_no_dhcpv4() {
        assert_eq!(subnet_dhcp(&network_spec(), "sub-v6", &[]).unwrap(), None);
    }

    #[test]
    fn unknown_subnet_is_an_error_naming_it() {
        let error = subnet_dhcp(&network_spec(), "sub-x", &[]).unwrap_err();

        assert!(error.to_string().contains("sub-x"), "{error}");
    }

    #[test]
    fn parse_mac_reads_colon_separated_hex_only() {
        assert_eq!(parse_mac("02:00:00:00:07:01"), Some(CLIENT_MAC));
        assert_eq!(
            parse_mac("FA:16:3E:0A:0B:0C"),
            Some([0xfa, 0x16, 0x3e, 0x0a, 0x0b, 0x0c])
        );
        assert_eq!(parse_mac("02:00:00:00:07"), None);
        assert_eq!(parse_mac("02:00:00:00:07:01:09"), None);
        assert_eq!(parse_mac("2:00:00:00:07:01"), None);
    }
}
