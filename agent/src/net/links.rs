//! A node's tenant-network links, made and removed over netlink: per VXLAN network a
//! bridge `ybr-<vni>` with a VXLAN device `yvx-<vni>` enslaved to it, head-end
//! replication entries (one all-zeros FDB entry per peer node) on the VXLAN device, and
//! VM taps (created by QEMU) enslaved to the bridge. None of these links gets an IPv6
//! link-local address: the node's own stack stays off tenant networks.

use std::collections::BTreeSet;
use std::net::Ipv4Addr;

use futures_util::{StreamExt, TryStreamExt};
use netlink_packet_route::link::{
    AfSpecInet6, AfSpecUnspec, In6AddrGenMode, InfoData, InfoKind, InfoVxlan, LinkAttribute,
    LinkFlags, LinkInfo, LinkMessage,
};
use netlink_packet_route::neighbour::{
    NeighbourAddress, NeighbourAttribute, NeighbourFlags, NeighbourMessage, NeighbourState,
};
use netlink_packet_route::{AddressFamily, RouteNetlinkMessage};
use rtnetlink::packet_core::{
    NLM_F_ACK, NLM_F_APPEND, NLM_F_CREATE, NLM_F_REQUEST, NetlinkMessage, NetlinkPayload,
};
use rtnetlink::{Handle, LinkBridge, LinkMessageBuilder, LinkUnspec, LinkVxlan};
use rustix::io::Errno;
use tokio::task::JoinHandle;

/// Every yunji bridge is named this prefix and the decimal VNI.
pub const BRIDGE_PREFIX: &str = "ybr-";
/// Every yunji VXLAN device is named this prefix and the decimal VNI.
pub const VXLAN_PREFIX: &str = "yvx-";
/// The IANA VXLAN port, used by every node.
pub const VXLAN_UDP_PORT: u16 = 4789;
/// VNIs are 24 bits on the wire.
pub const MAX_VNI: u32 = (1 << 24) - 1;

/// The MAC of head-end replication entries: broadcast and unknown unicast frames go to
/// every remote listed under it.
const FLOOD_MAC: [u8; 6] = [0; 6];

/// What went wrong, and on which device.
#[derive(Debug, thiserror::Error)]
pub enum LinkError {
    #[error("VNI {0} is outside the 24-bit VXLAN range 0..={MAX_VNI}")]
    InvalidVni(u32),
    #[error("cannot open a netlink socket")]
    Connect(#[source] std::io::Error),
    #[error("device {device} does not exist")]
    NoSuchDevice { device: String },
    #[error("cannot {action} {device}")]
    Netlink {
        device: String,
        action: String,
        #[source]
        source: rtnetlink::Error,
    },
}

pub type Result<T, E = LinkError> = std::result::Result<T, E>;

/// A link as the kernel knows it now.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Interface {
    pub name: String,
    pub index: u32,
}

/// The two links that carry one tenant network on this node.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct NetworkLinks {
    pub bridge: Interface,
    pub vxlan: Interface,
}

/// The bridge of the network with this VNI.
pub fn bridge_name(vni: u32) -> String {
    format!("{BRIDGE_PREFIX}{vni}")
}

/// The VXLAN device of the network with this VNI.
pub fn vxlan_name(vni: u32) -> String {
    format!("{VXLAN_PREFIX}{vni}")
}

/// The VNI a yunji bridge or VXLAN name stands for; `None` for any other name. Only
/// names in the exact form [`bridge_name`] and [`vxlan_name`] produce count (no sign, no
/// leading zero), so that reconciliation never claims a link yunji did not name.
pub fn vni_of_link_name(name: &str) -> Option<u32> {
    let digits = name
        .strip_prefix(BRIDGE_PREFIX)
        .or_else(|| name.strip_prefix(VXLAN_PREFIX))?;
    if digits.is_empty()
        || !digits.bytes().all(|b| b.is_ascii_digit())
        || (digits.len() > 1 && digits.starts_with('0'))
    {
        return None;
    }
    digits.parse().ok().filter(|vni| *vni <= MAX_VNI)
}

fn check_vni(vni: u32) -> Result<()> {
    if vni > MAX_VNI {
        return Err(LinkError::InvalidVni(vni));
    }
    Ok(())
}

/// The node's tenant-network links, over one netlink connection. Create it inside the
/// network namespace it should act on: the socket belongs to the namespace it was opened in.
pub struct Links {
    handle: Handle,
    connection: JoinHandle<()>,
}

impl Drop for Links {
    fn drop(&mut self) {
        self.connection.abort();
    }
}

impl Links {
    /// Opens the netlink socket and spawns its connection task on the current runtime.
    pub fn new() -> Result<Links> {
        let (connection, handle, _) = rtnetlink::new_connection().map_err(LinkError::Connect)?;
        let connection = tokio::spawn(connection);
        Ok(Links { handle, connection })
    }

    /// Makes the network's bridge and VXLAN device exist as specified, enslaved and up.
    /// Correct existing links are kept untouched; a VXLAN device with another VNI, local
    /// address or port (or a link of the wrong kind under either name) is recreated.
    pub async fn ensure_network(
        &self,
        vni: u32,
        mtu: u32,
        local: Ipv4Addr,
    ) -> Result<NetworkLinks> {
        check_vni(vni)?;
        let bridge = self.ensure_bridge(vni, mtu).await?;
        let vxlan = self.ensure_vxlan(vni, mtu, local, bridge.index).await?;
        Ok(NetworkLinks { bridge, vxlan })
    }

    /// Makes the head-end replication list of the network exactly `peers` (the underlay
    /// IPv4 addresses of the other nodes carrying it): missing entries are appended, stale
    /// ones removed, with the MACs learned from removed peers. The node's own address is
    /// never listed.
    pub async fn sync_peers(&self, vni: u32, peers: &[Ipv4Addr]) -> Result<()> {
        check_vni(vni)?;
        let device = vxlan_name(vni);
        let vxlan = self
            .link_by_name(&device)
            .await?
            .ok_or_else(|| LinkError::NoSuchDevice {
                device: device.clone(),
            })?;
        let wanted: BTreeSet<Ipv4Addr> = peers
            .iter()
            .copied()
            .filter(|peer| Some(*peer) != vxlan.vxlan.local)
            .collect();
        let entries = self.vxlan_fdb(&device, vxlan.index).await?;
        let plan = plan_peer_sync(&entries, &wanted);
        for entry in &plan.remove {
            self.delete_fdb(&device, vxlan.index, entry).await?;
        }
        for peer in plan.add {
            self.append_flood_entry(&device, vxlan.index, peer).await?;
        }
        Ok(())
    }

    /// Enslaves an existing interface (a VM's tap) to the network's bridge, gives it the
    /// bridge's MTU, stops it generating an IPv6 link-local address and brings it up.
    pub async fn attach(&self, ifname: &str, vni: u32) -> Result<()> {
        check_vni(vni)?;
        let bridge_device = bridge_name(vni);
        let bridge = self
            .link_by_name(&bridge_device)
            .await?
            .ok_or(LinkError::NoSuchDevice {
                device: bridge_device,
            })?;
        let port = self
            .link_by_name(ifname)
            .await?
            .ok_or_else(|| LinkError::NoSuchDevice {
                device: ifname.to_string(),
            })?;
        if port.generates_ipv6_link_local() {
            self.stop_ipv6_link_local(ifname, port.index).await?;
        }
        if port.controller == Some(bridge.index) && port.mtu == bridge.mtu && port.up {
            return Ok(());
        }
        let mut change = LinkUnspec::new_with_index(port.index)
            .controller(bridge.index)
            .up();
        if let Some(mtu) = bridge.mtu {
            change = change.mtu(mtu);
        }
        self.set_link(ifname, "enslave and bring up", change.build())
            .await
    }

    /// Deletes the network's VXLAN device and bridge; absent ones are fine. Ports still on
    /// the bridge are released, not deleted.
    pub async fn remove_network(&self, vni: u32) -> Result<()> {
        check_vni(vni)?;
        for device in [vxlan_name(vni), bridge_name(vni)] {
            if let Some(link) = self.link_by_name(&device).await? {
                self.delete_link(&device, link.index).await?;
            }
        }
        Ok(())
    }

    /// The VNIs of every yunji bridge or VXLAN device present, ascending, each once.
    pub async fn networks(&self) -> Result<Vec<u32>> {
        let mut vnis = BTreeSet::new();
        let mut links = self.handle.link().get().execute();
        while let Some(link) = links
            .try_next()
            .await
            .map_err(|source| LinkError::Netlink {
                device: "all links".to_string(),
                action: "list".to_string(),
                source,
            })?
        {
            if let Some(vni) = LinkFacts::of(&link)
                .name
                .as_deref()
                .and_then(vni_of_link_name)
            {
                vnis.insert(vni);
            }
        }
        Ok(vnis.into_iter().collect())
    }

    async fn ensure_bridge(&self, vni: u32, mtu: u32) -> Result<Interface> {
        let name = bridge_name(vni);
        let existing = match self.link_by_name(&name).await? {
            Some(link) if link.kind == Some(InfoKind::Bridge) => Some(link),
            Some(wrong) => {
                tracing::warn!(device = %name, kind = ?wrong.kind, "replacing a link that is not a bridge");
                self.delete_link(&name, wrong.index).await?;
                None
            }
            None => None,
        };
        let link = match existing {
            Some(link) => link,
            None => {
                tracing::info!(device = %name, vni, "creating bridge");
                // Created down, so that it is up only once it has no IPv6 link-local.
                let message = LinkMessageBuilder::<LinkBridge>::new(&name).build();
                self.add_link(&name, message).await?
            }
        };
        if link.generates_ipv6_link_local() {
            self.stop_ipv6_link_local(&name, link.index).await?;
        }
        // The MTU is set after creation: an MTU given at creation does not mark the
        // bridge's MTU as chosen, and the kernel would then follow its ports' minimum.
        if link.mtu != Some(mtu) || !link.up {
            let change = LinkUnspec::new_with_index(link.index).mtu(mtu).up().build();
            self.set_link(&name, "set MTU and bring up", change).await?;
        }
        Ok(Interface {
            name,
            index: link.index,
        })
    }

    async fn ensure_vxlan(
        &self,
        vni: u32,
        mtu: u32,
        local: Ipv4Addr,
        bridge_index: u32,
    ) -> Result<Interface> {
        let name = vxlan_name(vni);
        let existing = match self.link_by_name(&name).await? {
            Some(link) if link.is_vxlan_for(vni, local) => Some(link),
            Some(wrong) => {
                tracing::warn!(device = %name, kind = ?wrong.kind, vxlan = ?wrong.vxlan, "replacing a VXLAN device with the wrong settings");
                self.delete_link(&name, wrong.index).await?;
                None
            }
            None => None,
        };
        let link = match existing {
            Some(link) => link,
            None => {
                tracing::info!(device = %name, vni, %local, "creating VXLAN device");
                let message = LinkVxlan::new(&name, vni)
                    .local(local)
                    .port(VXLAN_UDP_PORT)
                    .learning(true)
                    .mtu(mtu)
                    .build();
                self.add_link(&name, message).await?
            }
        };
        if link.generates_ipv6_link_local() {
            self.stop_ipv6_link_local(&name, link.index).await?;
        }
        if link.mtu != Some(mtu) || link.controller != Some(bridge_index) || !link.up {
            let change = LinkUnspec::new_with_index(link.index)
                .mtu(mtu)
                .controller(bridge_index)
                .up()
                .build();
            self.set_link(&name, "set MTU, enslave and bring up", change)
                .await?;
        }
        Ok(Interface {
            name,
            index: link.index,
        })
    }

    /// The link named `name`, or `None` when there is none.
    async fn link_by_name(&self, name: &str) -> Result<Option<LinkFacts>> {
        let mut reply = self.handle.link().get().match_name(name).execute();
        match reply.try_next().await {
            Ok(Some(message)) => Ok(Some(LinkFacts::of(&message))),
            Ok(None) => Ok(None),
            Err(error) if is_errno(&error, Errno::NODEV) => Ok(None),
            Err(source) => Err(LinkError::Netlink {
                device: name.to_string(),
                action: "look up".to_string(),
                source,
            }),
        }
    }

    /// Creates a link and answers it as the kernel made it.
    async fn add_link(&self, name: &str, message: LinkMessage) -> Result<LinkFacts> {
        self.handle
            .link()
            .add(message)
            .execute()
            .await
            .map_err(|source| LinkError::Netlink {
                device: name.to_string(),
                action: "create".to_string(),
                source,
            })?;
        self.link_by_name(name)
            .await?
            .ok_or_else(|| LinkError::NoSuchDevice {
                device: name.to_string(),
            })
    }

    async fn set_link(&self, name: &str, action: &str, message: LinkMessage) -> Result<()> {
        self.handle
            .link()
            .set(message)
            .execute()
            .await
            .map_err(|source| LinkError::Netlink {
                device: name.to_string(),
                action: action.to_string(),
                source,
            })
    }

    /// `addrgenmode none`: the link gets no IPv6 link-local address when it comes up,
    /// so the node neither talks on the tenant network (router solicitations, MLD) nor
    /// answers there. A separate request, before the one that brings the link up: the
    /// kernel applies a request's up flag before its address-family settings.
    async fn stop_ipv6_link_local(&self, name: &str, index: u32) -> Result<()> {
        let message = LinkUnspec::new_with_index(index)
            .append_extra_attribute(LinkAttribute::AfSpecUnspec(vec![AfSpecUnspec::Inet6(
                vec![AfSpecInet6::AddrGenMode(In6AddrGenMode::None)],
            )]))
            .build();
        self.set_link(name, "turn off IPv6 link-local addresses on", message)
            .await
    }

    /// Deletes a link; one that vanished meanwhile is fine.
    async fn delete_link(&self, name: &str, index: u32) -> Result<()> {
        tracing::info!(device = %name, "deleting link");
        match self.handle.link().del(index).execute().await {
            Ok(()) => Ok(()),
            Err(error) if is_errno(&error, Errno::NODEV) => Ok(()),
            Err(source) => Err(LinkError::Netlink {
                device: name.to_string(),
                action: "delete".to_string(),
                source,
            }),
        }
    }

    /// The IPv4 forwarding entries of one VXLAN device.
    async fn vxlan_fdb(&self, device: &str, index: u32) -> Result<Vec<FdbEntry>> {
        let list_failed = |source: rtnetlink::Error| LinkError::Netlink {
            device: device.to_string(),
            action: "list the forwarding entries of".to_string(),
            source,
        };
        let mut entries = Vec::new();
        let mut dump = self
            .handle
            .neighbours()
            .get()
            .set_address_family(AddressFamily::Bridge)
            .execute();
        while let Some(message) = dump.try_next().await.map_err(list_failed)? {
            if message.header.ifindex != index {
                continue;
            }
            if let Some(entry) = FdbEntry::of(&message) {
                entries.push(entry);
            }
        }
        Ok(entries)
    }

    /// `bridge fdb append 00:00:00:00:00:00 dev <vxlan> dst <peer> self permanent`: the
    /// append flag lets one all-zeros MAC carry a list of remotes.
    async fn append_flood_entry(&self, device: &str, index: u32, peer: Ipv4Addr) -> Result<()> {
        tracing::info!(device, %peer, "adding VXLAN flood peer");
        let entry = FdbEntry {
            mac: FLOOD_MAC,
            remote: peer,
            permanent: true,
        };
        let mut request =
            NetlinkMessage::from(RouteNetlinkMessage::NewNeighbour(entry.message(index)));
        request.header.flags = NLM_F_REQUEST | NLM_F_ACK | NLM_F_CREATE | NLM_F_APPEND;
        let failed = |source: rtnetlink::Error| LinkError::Netlink {
            device: device.to_string(),
            action: format!("add flood peer {peer} to"),
            source,
        };
        let mut handle = self.handle.clone();
        let mut replies = handle.request(request).map_err(failed)?;
        while let Some(reply) = replies.next().await {
            if let NetlinkPayload::Error(error) = reply.payload {
                return Err(failed(rtnetlink::Error::NetlinkError(error)));
            }
        }
        Ok(())
    }

    /// Deletes one remote of one MAC; one that vanished meanwhile is fine.
    async fn delete_fdb(&self, device: &str, index: u32, entry: &FdbEntry) -> Result<()> {
        tracing::info!(device, remote = %entry.remote, mac = ?entry.mac, "removing VXLAN forwarding entry");
        match self
            .handle
            .neighbours()
            .del(entry.message(index))
            .execute()
            .await
        {
            Ok(()) => Ok(()),
            Err(error) if is_errno(&error, Errno::NOENT) => Ok(()),
            Err(source) => Err(LinkError::Netlink {
                device: device.to_string(),
                action: format!("remove the entry to {} from", entry.remote),
                source,
            }),
        }
    }
}

fn is_errno(error: &rtnetlink::Error, errno: Errno) -> bool {
    matches!(error, rtnetlink::Error::NetlinkError(message) if message.raw_code() == -errno.raw_os_error())
}

/// The parts of a link message the module decides on.
#[derive(Debug, Clone, Default, PartialEq, Eq)]
struct LinkFacts {
    index: u32,
    name: Option<String>,
    kind: Option<InfoKind>,
    mtu: Option<u32>,
    controller: Option<u32>,
    up: bool,
    /// `None` when the kernel reports no IPv6 settings (IPv6 off on the node).
    ipv6_addr_gen_mode: Option<In6AddrGenMode>,
    vxlan: VxlanFacts,
}

#[derive(Debug, Clone, Default, PartialEq, Eq)]
struct VxlanFacts {
    id: Option<u32>,
    local: Option<Ipv4Addr>,
    port: Option<u16>,
    learning: Option<bool>,
}

impl LinkFacts {
    fn of(message: &LinkMessage) -> LinkFacts {
        let mut facts = LinkFacts {
            index: message.header.index,
            up: message.header.flags.contains(LinkFlags::Up),
            ..LinkFacts::default()
        };
        for attribute in &message.attributes {
            match attribute {
                LinkAttribute::IfName(name) => facts.name = Some(name.clone()),
                LinkAttribute::Mtu(mtu) => facts.mtu = Some(*mtu),
                LinkAttribute::Controller(index) => facts.controller = Some(*index),
                LinkAttribute::AfSpecUnspec(families) => {
                    for family in families {
                        if let AfSpecUnspec::Inet6(settings) = family {
                            for setting in settings {
                                if let AfSpecInet6::AddrGenMode(mode) = setting {
                                    facts.ipv6_addr_gen_mode = Some(*mode);
                                }
                            }
                        }
                    }
                }
                LinkAttribute::LinkInfo(infos) => {
                    for info in infos {
                        match info {
                            LinkInfo::Kind(kind) => facts.kind = Some(kind.clone()),
                            LinkInfo::Data(InfoData::Vxlan(vxlan)) => {
                                facts.vxlan = VxlanFacts::of(vxlan)
                            }
                            _ => {}
                        }
                    }
                }
                _ => {}
            }
        }
        facts
    }

    fn generates_ipv6_link_local(&self) -> bool {
        self.ipv6_addr_gen_mode
            .as_ref()
            .is_some_and(|mode| *mode != In6AddrGenMode::None)
    }

    /// Whether this is the VXLAN device a network with `vni` over `local` needs; MTU,
    /// controller and state can be changed in place, these cannot.
    fn is_vxlan_for(&self, vni: u32, local: Ipv4Addr) -> bool {
        self.kind == Some(InfoKind::Vxlan)
            && self.vxlan.id == Some(vni)
            && self.vxlan.local == Some(local)
            && self.vxlan.port == Some(VXLAN_UDP_PORT)
            && self.vxlan.learning == Some(true)
    }
}

impl VxlanFacts {
    fn of(attributes: &[InfoVxlan]) -> VxlanFacts {
        let mut facts = VxlanFacts::default();
        for attribute in attributes {
            match attribute {
                InfoVxlan::Id(id) => facts.id = Some(*id),
                InfoVxlan::Local(local) => facts.local = Some(*local),
                InfoVxlan::Port(port) => facts.port = Some(*port),
                InfoVxlan::Learning(learning) => facts.learning = Some(*learning),
                _ => {}
            }
        }
        facts
    }
}

/// One remote of one MAC in a VXLAN device's forwarding database.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
struct FdbEntry {
    mac: [u8; 6],
    remote: Ipv4Addr,
    /// Configured (flood entries, static MACs) rather than learned from traffic.
    permanent: bool,
}

impl FdbEntry {
    /// The entry a neighbour message describes, if it is a VXLAN entry with an IPv4 remote.
    fn of(message: &NeighbourMessage) -> Option<FdbEntry> {
        if message.header.family != AddressFamily::Bridge
            || !message.header.flags.contains(NeighbourFlags::Own)
        {
            return None;
        }
        let mut mac = None;
        let mut remote = None;
        for attribute in &message.attributes {
            match attribute {
                NeighbourAttribute::LinkLayerAddress(bytes) => {
                    mac = <[u8; 6]>::try_from(bytes.as_slice()).ok();
                }
                // Bridge-family dumps leave the remote as raw bytes.
                NeighbourAttribute::Destination(NeighbourAddress::Other(bytes)) => {
                    remote = <[u8; 4]>::try_from(bytes.as_slice())
                        .ok()
                        .map(Ipv4Addr::from);
                }
                NeighbourAttribute::Destination(NeighbourAddress::Inet(ip)) => remote = Some(*ip),
                _ => {}
            }
        }
        Some(FdbEntry {
            mac: mac?,
            remote: remote?,
            permanent: matches!(
                message.header.state,
                NeighbourState::Permanent | NeighbourState::Noarp
            ),
        })
    }

    /// The message that adds or deletes exactly this entry on the device `index`.
    fn message(&self, index: u32) -> NeighbourMessage {
        let mut message = NeighbourMessage::default();
        message.header.family = AddressFamily::Bridge;
        message.header.ifindex = index;
        message.header.flags = NeighbourFlags::Own;
        message.header.state = if self.permanent {
            NeighbourState::Permanent
        } else {
            NeighbourState::Reachable
        };
        message.attributes = vec![
            NeighbourAttribute::LinkLayerAddress(self.mac.to_vec()),
            NeighbourAttribute::Destination(NeighbourAddress::Inet(self.remote)),
        ];
        message
    }

    fn is_flood(&self) -> bool {
        self.mac == FLOOD_MAC
    }
}

/// What [`Links::sync_peers`] changes.
#[derive(Debug, Default, PartialEq, Eq)]
struct PeerSync {
    add: Vec<Ipv4Addr>,
    remove: Vec<FdbEntry>,
}

/// Flood entries to add for peers not yet listed; flood entries and learned MACs to drop
/// for remotes no longer peers (the learned ones would keep unicast flowing to a node
/// that left). Static MAC entries are left alone: yunji does not make them here.
fn plan_peer_sync(entries: &[FdbEntry], peers: &BTreeSet<Ipv4Addr>) -> PeerSync {
    let flooded: BTreeSet<Ipv4Addr> = entries
        .iter()
        .filter(|entry| entry.is_flood())
        .map(|entry| entry.remote)
        .collect();
    PeerSync {
        add: peers.difference(&flooded).copied().collect(),
        remove: entries
            .iter()
            .filter(|entry| entry.is_flood() || !entry.permanent)
            .filter(|entry| !peers.contains(&entry.remote))
            .copied()
            .collect(),
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn names_carry_the_decimal_vni_within_the_interface_name_limit() {
        assert_eq!(bridge_name(1001), "ybr-1001");
        assert_eq!(vxlan_name(1001), "yvx-1001");
        // IFNAMSIZ is 16 including the terminating NUL.
        assert!(bridge_name(MAX_VNI).len() <= 15);
        assert!(vxlan_name(MAX_VNI).len() <= 15);
    }

    #[test]
    fn vni_is_read_back_from_yunji_names_only() {
        assert_eq!(vni_of_link_name("ybr-1001"), Some(1001));
        assert_eq!(vni_of_link_name("yvx-0"), Some(0));
        assert_eq!(vni_of_link_name(&vxlan_name(MAX_VNI)), Some(MAX_VNI));
        for foreign in [
            "eth0",
            "ybr-",
            "ybr-01",
            "ybr-+1",
            "ybr-12a",
            "yvx-16777216",
            "ybr1001",
            "xbr-1",
        ] {
            assert_eq!(vni_of_link_name(foreign), None, "{foreign}");
        }
    }

    #[test]
    fn vni_beyond_24_bits_is_refused() {
        assert!(check_vni(MAX_VNI).is_ok());
        assert!(matches!(
            check_vni(MAX_VNI + 1),
            Err(LinkError::InvalidVni(16_777_216))
        ));
    }

    fn vxlan_facts(vni: u32, local: Ipv4Addr, port: u16) -> LinkFacts {
        let mut message = LinkVxlan::new("yvx-1", vni)
            .local(local)
            .port(port)
            .learning(true)
            .mtu(1450)
            .build();
        message.header.index = 7;
        LinkFacts::of(&message)
    }

    #[test]
    fn vxlan_facts_are_read_from_a_link_message() {
        let facts = vxlan_facts(1001, Ipv4Addr::new(10, 99, 0, 1), VXLAN_UDP_PORT);
        assert_eq!(facts.index, 7);
        assert_eq!(facts.name.as_deref(), Some("yvx-1"));
        assert_eq!(facts.kind, Some(InfoKind::Vxlan));
        assert_eq!(facts.mtu, Some(1450));
        assert_eq!(
            facts.vxlan,
            VxlanFacts {
                id: Some(1001),
                local: Some(Ipv4Addr::new(10, 99, 0, 1)),
                port: Some(VXLAN_UDP_PORT),
                learning: Some(true),
            }
        );
    }

    #[test]
    fn a_vxlan_device_with_another_vni_local_or_port_is_not_reused() {
        let local = Ipv4Addr::new(10, 99, 0, 1);
        assert!(vxlan_facts(1001, local, VXLAN_UDP_PORT).is_vxlan_for(1001, local));
        assert!(!vxlan_facts(1002, local, VXLAN_UDP_PORT).is_vxlan_for(1001, local));
        assert!(
            !vxlan_facts(1001, local, VXLAN_UDP_PORT)
                .is_vxlan_for(1001, Ipv4Addr::new(10, 99, 0, 9))
        );
        assert!(!vxlan_facts(1001, local, 8472).is_vxlan_for(1001, local));
        let bridge = LinkFacts::of(&LinkBridge::new("yvx-1001").build());
        assert!(!bridge.is_vxlan_for(1001, local));
    }

    #[test]
    fn ipv6_link_local_generation_is_read_from_the_inet6_settings() {
        let with_mode = |mode| {
            LinkFacts::of(
                &LinkBridge::new("ybr-1")
                    .append_extra_attribute(LinkAttribute::AfSpecUnspec(vec![AfSpecUnspec::Inet6(
                        vec![AfSpecInet6::AddrGenMode(mode)],
                    )]))
                    .build(),
            )
        };
        assert!(with_mode(In6AddrGenMode::Eui64).generates_ipv6_link_local());
        assert!(!with_mode(In6AddrGenMode::None).generates_ipv6_link_local());
        // No IPv6 settings reported: IPv6 is off, nothing to turn off.
        assert!(!LinkFacts::of(&LinkBridge::new("ybr-1").build()).generates_ipv6_link_local());
    }

    fn flood(remote: [u8; 4]) -> FdbEntry {
        FdbEntry {
            mac: FLOOD_MAC,
            remote: Ipv4Addr::from(remote),
            permanent: true,
        }
    }

    #[test]
    fn peer_sync_adds_missing_and_removes_stale_flood_entries() {
        let entries = [flood([10, 99, 0, 2]), flood([10, 99, 0, 3])];
        let peers = BTreeSet::from([Ipv4Addr::new(10, 99, 0, 3), Ipv4Addr::new(10, 99, 0, 4)]);
        assert_eq!(
            plan_peer_sync(&entries, &peers),
            PeerSync {
                add: vec![Ipv4Addr::new(10, 99, 0, 4)],
                remove: vec![flood([10, 99, 0, 2])],
            }
        );
    }

    #[test]
    fn peer_sync_with_the_same_peers_changes_nothing() {
        let entries = [flood([10, 99, 0, 2])];
        let peers = BTreeSet::from([Ipv4Addr::new(10, 99, 0, 2)]);
        assert_eq!(plan_peer_sync(&entries, &peers), PeerSync::default());
    }

    #[test]
    fn peer_sync_forgets_macs_learned_from_a_removed_peer_but_keeps_static_ones() {
        let learned_from_gone = FdbEntry {
            mac: [2, 0, 0, 0, 0, 1],
            remote: Ipv4Addr::new(10, 99, 0, 2),
            permanent: false,
        };
        let learned_from_peer = FdbEntry {
            remote: Ipv4Addr::new(10, 99, 0, 3),
            ..learned_from_gone
        };
        let static_mac = FdbEntry {
            permanent: true,
            ..learned_from_gone
        };
        let entries = [learned_from_gone, learned_from_peer, static_mac];
        let peers = BTreeSet::from([Ipv4Addr::new(10, 99, 0, 3)]);
        let plan = plan_peer_sync(&entries, &peers);
        assert_eq!(plan.remove, vec![learned_from_gone]);
    }

    #[test]
    fn fdb_entry_round_trips_through_its_message() {
        let entry = flood([10, 99, 0, 2]);
        let message = entry.message(5);
        assert_eq!(message.header.ifindex, 5);
        assert_eq!(FdbEntry::of(&message), Some(entry));
    }

    #[test]
    fn fdb_entry_reads_the_raw_remote_of_a_bridge_dump() {
        let mut message = flood([10, 99, 0, 2]).message(5);
        message.attributes[1] =
            NeighbourAttribute::Destination(NeighbourAddress::Other(vec![10, 99, 0, 2]));
        assert_eq!(FdbEntry::of(&message), Some(flood([10, 99, 0, 2])));
    }

    #[test]
    fn bridge_port_entries_without_a_remote_are_not_vxlan_entries() {
        let mut message = flood([10, 99, 0, 2]).message(5);
        message.attributes.truncate(1);
        assert_eq!(FdbEntry::of(&message), None);
    }
}
