//! The standard's clauses (Annex B of CH/Z 云计算服务地理信息系统开发接口规范 — 基础设施即
//! 服务): what each is called, the endpoint that binds it, the `yunji` command that runs it,
//! and the response elements the standard marks mandatory (必选). The checker, the
//! report and `docs/conformance.md` all read this one table.

/// A mandatory (必选) element of a clause's reply: its name in the standard and where it
/// is in the OpenStack body (a JSON pointer into the resource object).
#[derive(Debug, Clone, Copy)]
pub struct Element {
    pub name: &'static str,
    pub pointer: &'static str,
}

const fn el(name: &'static str, pointer: &'static str) -> Element {
    Element { name, pointer }
}

#[derive(Debug, Clone, Copy)]
pub struct Clause {
    pub id: &'static str,
    /// The clause's title in the standard.
    pub title: &'static str,
    /// The HTTP binding (API-BINDING.md).
    pub endpoint: &'static str,
    /// The native CLI command.
    pub cli: &'static str,
    /// Reply elements the standard marks 必选, checked on every run.
    pub mandatory: &'static [Element],
}

const SERVER: &[Element] = &[
    el("云主机ID", "/id"),
    el("云主机名称", "/name"),
    el("云主机规格", "/flavor"),
    el("镜像信息", "/image"),
    el("云主机存储信息", "/os-extended-volumes:volumes_attached"),
    el("云主机网络信息", "/addresses"),
    el("云主机状态", "/status"),
    el("安全组", "/security_groups"),
    el("云主机创建时间", "/created"),
];

const FLAVOR: &[Element] = &[
    el("规格ID", "/id"),
    el("规格名称", "/name"),
    el("CPU信息", "/vcpus"),
    el("内存信息", "/ram"),
    el("磁盘信息", "/disk"),
];

const PUBLIC_IP: &[Element] = &[
    el("公网IP ID", "/id"),
    el("IP地址", "/public_ip_address"),
    el("状态", "/status"),
];

const LOAD_BALANCER: &[Element] = &[
    el("负载均衡ID", "/id"),
    el("名称", "/name"),
    el("描述信息", "/description"),
];

const SECURITY_GROUP: &[Element] = &[
    el("描述信息", "/description"),
    el("安全组ID", "/id"),
    el("名称", "/name"),
    el("安全组规则", "/security_group_rules"),
];

const RULE: &[Element] = &[
    el("规则ID", "/id"),
    el("规则方向", "/direction"),
    el("网络类型", "/ethertype"),
    el("协议类型", "/protocol"),
    el("安全组ID", "/security_group_id"),
];

const VOLUME: &[Element] = &[
    el("云硬盘ID", "/id"),
    el("可用域", "/availability_zone"),
    el("云硬盘容量", "/size"),
];

pub const CLAUSES: &[Clause] = &[
    Clause {
        id: "B.1.1",
        title: "鉴权",
        endpoint: "POST /identity/v3/auth/tokens",
        cli: "yunji token issue",
        mandatory: &[
            el("令牌", "X-Subject-Token"),
            el("过期时间", "/token/expires_at"),
        ],
    },
    Clause {
        id: "B.1.2",
        title: "数据中心",
        endpoint: "GET /identity/v3/regions, GET /compute/v2.1/os-availability-zone",
        cli: "yunji datacenter list",
        mandatory: &[],
    },
    Clause {
        id: "B.1.3.1",
        title: "云主机配额",
        endpoint: "GET /compute/v2.1/limits, GET /compute/v2.1/os-hypervisors/statistics",
        cli: "yunji quota show; yunji datacenter capacity",
        mandatory: &[
            el("总内存", "/limits/absolute/maxTotalRAMSize"),
            el("已使用内存", "/limits/absolute/totalRAMUsed"),
            el("总CPU", "/limits/absolute/maxTotalCores"),
            el("已使用CPU", "/limits/absolute/totalCoresUsed"),
        ],
    },
    Clause {
        id: "B.1.3.2",
        title: "云硬盘配额",
        endpoint: "GET /volume/v3/{project_id}/limits",
        cli: "yunji quota show",
        mandatory: &[
            el("总磁盘大小", "/limits/absolute/maxTotalVolumeGigabytes"),
            el("已使用磁盘大小", "/limits/absolute/totalGigabytesUsed"),
        ],
    },
    Clause {
        id: "B.2.1.1",
        title: "创建云主机",
        endpoint: "POST /compute/v2.1/servers",
        cli: "yunji server create NAME --flavor F --image I --network N --wait",
        mandatory: &[el("云主机ID", "/id")],
    },
    Clause {
        id: "B.2.1.2",
        title: "删除云主机",
        endpoint: "DELETE /compute/v2.1/servers/{id}",
        cli: "yunji server delete SERVER --wait",
        mandatory: &[],
    },
    Clause {
        id: "B.2.1.3",
        title: "查询云主机详情",
        endpoint: "GET /compute/v2.1/servers/{id}",
        cli: "yunji server show SERVER",
        mandatory: SERVER,
    },
    Clause {
        id: "B.2.1.4",
        title: "修改云主机",
        endpoint: "PUT /compute/v2.1/servers/{id}",
        cli: "yunji server set SERVER --name NEW",
        mandatory: &[],
    },
    Clause {
        id: "B.2.1.5",
        title: "启动云主机",
        endpoint: "POST /compute/v2.1/servers/{id}/action {\"os-start\"}",
        cli: "yunji server start SERVER --wait",
        mandatory: &[],
    },
    Clause {
        id: "B.2.1.6",
        title: "关闭云主机",
        endpoint: "POST /compute/v2.1/servers/{id}/action {\"os-stop\"}",
        cli: "yunji server stop SERVER --wait",
        mandatory: &[],
    },
    Clause {
        id: "B.2.1.7",
        title: "重启云主机",
        endpoint: "POST /compute/v2.1/servers/{id}/action {\"reboot\"}",
        cli: "yunji server reboot SERVER [--hard] --wait",
        mandatory: &[],
    },
    Clause {
        id: "B.2.1.8",
        title: "查询云主机列表",
        endpoint: "GET /compute/v2.1/servers/detail",
        cli: "yunji server list",
        mandatory: SERVER,
    },
    Clause {
        id: "B.2.1.9",
        title: "热迁移云主机",
        endpoint: "POST /compute/v2.1/servers/{id}/action {\"os-migrateLive\"}",
        cli: "yunji server migrate SERVER --host HOST --wait",
        mandatory: &[],
    },
    Clause {
        id: "B.2.1.10",
        title: "更改规格",
        endpoint: "POST /compute/v2.1/servers/{id}/action {\"resize\"}, {\"confirmResize\"}",
        cli: "yunji server resize SERVER --flavor F --wait; yunji server resize-confirm SERVER",
        mandatory: &[],
    },
    Clause {
        id: "B.2.2.1",
        title: "创建云主机规格",
        endpoint: "POST /compute/v2.1/flavors",
        cli: "yunji flavor create NAME --vcpus N --ram MiB --disk GiB --id ID",
        mandatory: FLAVOR,
    },
    Clause {
        id: "B.2.2.2",
        title: "删除云主机规格",
        endpoint: "DELETE /compute/v2.1/flavors/{id}",
        cli: "yunji flavor delete FLAVOR",
        mandatory: &[],
    },
    Clause {
        id: "B.2.2.3",
        title: "查询云主机规格详情",
        endpoint: "GET /compute/v2.1/flavors/{id}",
        cli: "yunji flavor show FLAVOR",
        mandatory: FLAVOR,
    },
    Clause {
        id: "B.2.2.4",
        title: "查询云主机规格列表",
        endpoint: "GET /compute/v2.1/flavors/detail",
        cli: "yunji flavor list",
        mandatory: FLAVOR,
    },
    Clause {
        id: "B.2.3.1",
        title: "创建镜像",
        endpoint: "POST /image/v2/images; POST /compute/v2.1/servers/{id}/action {\"createImage\"}",
        cli: "yunji image create NAME; yunji server image-create SERVER --name NAME --wait",
        mandatory: &[el("镜像ID", "/id")],
    },
    Clause {
        id: "B.2.3.2",
        title: "上传镜像",
        endpoint: "PUT /image/v2/images/{id}/file",
        cli: "yunji image upload IMAGE --file PATH",
        mandatory: &[],
    },
    Clause {
        id: "B.2.3.3",
        title: "删除镜像",
        endpoint: "DELETE /image/v2/images/{id}",
        cli: "yunji image delete IMAGE",
        mandatory: &[],
    },
    Clause {
        id: "B.2.3.4",
        title: "查询镜像详情",
        endpoint: "GET /image/v2/images/{id}",
        cli: "yunji image show IMAGE",
        mandatory: &[],
    },
    Clause {
        id: "B.2.3.5",
        title: "更新镜像信息",
        endpoint: "PATCH /image/v2/images/{id} (openstack-images-v2.1-json-patch)",
        cli: "yunji image set IMAGE --name NEW --property K=V --remove-property K",
        mandatory: &[],
    },
    Clause {
        id: "B.2.3.6",
        title: "查询镜像列表",
        endpoint: "GET /image/v2/images",
        cli: "yunji image list",
        mandatory: &[],
    },
    Clause {
        id: "B.3.1.1",
        title: "查询网络列表",
        endpoint: "GET /network/v2.0/networks (subnet_details), GET /network/v2.0/subnets",
        cli: "yunji network list",
        mandatory: &[el("网络ID", "/id")],
    },
    Clause {
        id: "B.3.2.1",
        title: "创建浮动 IP",
        endpoint: "POST /network/v2.0/floatingips; PUT /network/v2.0/floatingips/{id}",
        cli: "yunji floating-ip create --network EXT; yunji floating-ip set FIP --server S",
        mandatory: &[
            el("私有IP地址", "/fixed_ip_address"),
            el("浮动IP地址", "/floating_ip_address"),
            el("外部网络ID", "/floating_network_id"),
            el("ID", "/id"),
            el("端口ID", "/port_id"),
            el("网络状态", "/status"),
        ],
    },
    Clause {
        id: "B.3.2.2",
        title: "删除浮动 IP",
        endpoint: "DELETE /network/v2.0/floatingips/{id}",
        cli: "yunji floating-ip delete FIP",
        mandatory: &[],
    },
    Clause {
        id: "B.3.3.1",
        title: "创建公网 IP",
        endpoint: "POST /network/v2.0/publicips",
        cli: "yunji public-ip create NAME",
        mandatory: PUBLIC_IP,
    },
    Clause {
        id: "B.3.3.2",
        title: "绑定公网 IP",
        endpoint: "POST /network/v2.0/publicips/{id}/bind",
        cli: "yunji public-ip bind IP --server S",
        mandatory: &[],
    },
    Clause {
        id: "B.3.3.3",
        title: "解绑公网 IP",
        endpoint: "POST /network/v2.0/publicips/{id}/unbind",
        cli: "yunji public-ip unbind IP --server S",
        mandatory: &[],
    },
    Clause {
        id: "B.3.3.4",
        title: "查询公网 IP",
        endpoint: "GET /network/v2.0/publicips/{id}",
        cli: "yunji public-ip show IP",
        mandatory: PUBLIC_IP,
    },
    Clause {
        id: "B.3.3.5",
        title: "删除公网 IP",
        endpoint: "DELETE /network/v2.0/publicips/{id}",
        cli: "yunji public-ip delete IP",
        mandatory: &[],
    },
    Clause {
        id: "B.3.4.1",
        title: "创建负载均衡",
        endpoint: "POST /load-balancer/v2/lbaas/loadbalancers",
        cli: "yunji lb create NAME --vip-subnet SUBNET --wait",
        mandatory: &[el("负载均衡ID", "/id"), el("名称", "/name")],
    },
    Clause {
        id: "B.3.4.2",
        title: "删除负载均衡",
        endpoint: "DELETE /load-balancer/v2/lbaas/loadbalancers/{id}?cascade=true",
        cli: "yunji lb delete LB --cascade",
        mandatory: &[],
    },
    Clause {
        id: "B.3.4.3",
        title: "查询负载均衡详情",
        endpoint: "GET /load-balancer/v2/lbaas/loadbalancers/{id}",
        cli: "yunji lb show LB",
        mandatory: LOAD_BALANCER,
    },
    Clause {
        id: "B.3.4.4",
        title: "查询负载均衡列表",
        endpoint: "GET /load-balancer/v2/lbaas/loadbalancers",
        cli: "yunji lb list",
        mandatory: LOAD_BALANCER,
    },
    Clause {
        id: "B.3.4.5",
        title: "负载均衡增加节点",
        endpoint: "PATCH /load-balancer/v2/lbaas/loadbalancers/{id}/nodes {\"add\"}",
        cli: "yunji lb node add LB --server S --port P",
        mandatory: &[el("节点ID", "/id"), el("节点名称", "/name")],
    },
    Clause {
        id: "B.3.4.6",
        title: "负载均衡删除节点",
        endpoint: "PATCH /load-balancer/v2/lbaas/loadbalancers/{id}/nodes {\"remove\"}",
        cli: "yunji lb node remove LB --server S",
        mandatory: &[],
    },
    Clause {
        id: "B.3.5.1",
        title: "创建安全组",
        endpoint: "POST /network/v2.0/security-groups",
        cli: "yunji security-group create NAME --description D",
        mandatory: SECURITY_GROUP,
    },
    Clause {
        id: "B.3.5.2",
        title: "删除安全组",
        endpoint: "DELETE /network/v2.0/security-groups/{id}",
        cli: "yunji security-group delete GROUP",
        mandatory: &[],
    },
    Clause {
        id: "B.3.5.3",
        title: "查询安全组",
        endpoint: "GET /network/v2.0/security-groups/{id}",
        cli: "yunji security-group show GROUP",
        mandatory: SECURITY_GROUP,
    },
    Clause {
        id: "B.3.5.4",
        title: "创建安全组规则",
        endpoint: "POST /network/v2.0/security-group-rules",
        cli: "yunji security-group rule create GROUP --protocol tcp --dst-port 22",
        mandatory: RULE,
    },
    Clause {
        id: "B.3.5.5",
        title: "删除安全组规则",
        endpoint: "DELETE /network/v2.0/security-group-rules/{id}",
        cli: "yunji security-group rule delete RULE",
        mandatory: &[],
    },
    Clause {
        id: "B.4.1.1",
        title: "创建云硬盘",
        endpoint: "POST /volume/v3/{project_id}/volumes",
        cli: "yunji volume create NAME --size GiB --type SATA --wait",
        mandatory: VOLUME,
    },
    Clause {
        id: "B.4.1.2",
        title: "删除云硬盘",
        endpoint: "DELETE /volume/v3/{project_id}/volumes/{id}",
        cli: "yunji volume delete VOLUME --wait",
        mandatory: &[],
    },
    Clause {
        id: "B.4.1.3",
        title: "查询云硬盘信息",
        endpoint: "GET /volume/v3/{project_id}/volumes/{id}",
        cli: "yunji volume show VOLUME",
        mandatory: VOLUME,
    },
    Clause {
        id: "B.4.1.4",
        title: "挂载云硬盘",
        endpoint: "POST /compute/v2.1/servers/{id}/os-volume_attachments",
        cli: "yunji volume attach VOLUME --server S --wait",
        mandatory: &[],
    },
    Clause {
        id: "B.4.1.5",
        title: "卸载云硬盘",
        endpoint: "DELETE /compute/v2.1/servers/{id}/os-volume_attachments/{volume_id}",
        cli: "yunji volume detach VOLUME --server S --wait",
        mandatory: &[],
    },
    Clause {
        id: "B.4.1.6",
        title: "扩容云硬盘",
        endpoint: "POST /volume/v3/{project_id}/volumes/{id}/action {\"os-extend\"}",
        cli: "yunji volume extend VOLUME --size GiB --wait",
        mandatory: &[],
    },
];

/// The clause with this id.
pub fn clause(id: &str) -> &'static Clause {
    CLAUSES
        .iter()
        .find(|c| c.id == id)
        .unwrap_or_else(|| panic!("{id} is not a clause of the table"))
}

/// `docs/conformance.md`: the clause → endpoint → CLI matrix, generated from the table.
pub fn matrix_markdown() -> String {
    let mut out = String::from(
        "# Conformance matrix\n\n\
         Every clause of Annex B of the standard, the endpoint that binds it and the `yunji`\n\
         command that runs it. Generated from `cli/src/conformance/clauses.rs` (the table\n\
         `yunji conformance` checks) by `yunji conformance --matrix`; a test fails when this\n\
         file drifts from it. Mandatory (必选) reply elements are what the checker requires.\n\n\
         Run it against any OpenStack-compatible cloud (as an admin, so it may create flavors\n\
         and an external network if there is none):\n\n\
         ```sh\n\
         yunji --os-cloud NAME conformance --report report.html   # and report.json beside it\n\
         yunji --os-cloud NAME conformance --image IMAGE          # servers boot a real image\n\
         ```\n\n\
         Each clause is `pass`, `fail` (the evidence names the request, its status and the\n\
         missing element) or `not offered` (the service or extension is absent, or live\n\
         migration has no second host). The exit status is 0 only when every clause passes,\n\
         5 otherwise. Everything the run creates is named `conformance-<8 hex>-…` and removed\n\
         at the end, also after failures.\n\n\
         | clause | 条款 | endpoint | CLI | mandatory (必选) reply elements |\n\
         |---|---|---|---|---|\n",
    );
    for c in CLAUSES {
        let elements = c
            .mandatory
            .iter()
            .map(|e| format!("{} `{}`", e.name, e.pointer))
            .collect::<Vec<_>>()
            .join(", ");
        out.push_str(&format!(
            "| {} | {} | `{}` | `{}` | {} |\n",
            c.id,
            c.title,
            c.endpoint.replace('|', "\\|"),
            c.cli.replace('|', "\\|"),
            if elements.is_empty() {
                "—".into()
            } else {
                elements
            }
        ));
    }
    out
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn every_clause_of_annex_b_once_in_order() {
        assert_eq!(CLAUSES.len(), 49);
        let mut ids: Vec<&str> = CLAUSES.iter().map(|c| c.id).collect();
        ids.dedup();
        assert_eq!(ids.len(), 49, "a clause is listed twice");
    }

    #[test]
    fn matrix_in_docs_is_generated_from_the_table() {
        let path = concat!(env!("CARGO_MANIFEST_DIR"), "/../docs/conformance.md");
        let generated = matrix_markdown();
        if std::env::var_os("YUNJI_BLESS").is_some() {
            std::fs::write(path, &generated).unwrap_or_else(|e| panic!("{path}: {e}"));
        }
        let committed = std::fs::read_to_string(path).unwrap_or_default();
        assert!(
            committed == generated,
            "docs/conformance.md drifted from cli/src/conformance/clauses.rs; regenerate it with \
             `YUNJI_BLESS=1 cargo test -p yunji-cli matrix` (or `yunji conformance --matrix > docs/conformance.md`)"
        );
    }
}
