-- Fewer pages written by every port create (each is a WAL frame in its commit).

-- A port's addresses and groups are found by their keys. Without a rowid each row lives
-- in its primary key's B-tree alone, instead of in a table and an index of that key.
-- Their order on the port, which the rowid kept, becomes a column.
CREATE TABLE port_fixed_ips_keyed (
    subnet_id  TEXT NOT NULL REFERENCES subnets(id),
    ip_address TEXT NOT NULL,
    port_id    TEXT NOT NULL REFERENCES ports(id) ON DELETE CASCADE,
    position   INTEGER NOT NULL,
    PRIMARY KEY (subnet_id, ip_address)
) WITHOUT ROWID;
INSERT INTO port_fixed_ips_keyed SELECT subnet_id, ip_address, port_id, rowid FROM port_fixed_ips;
DROP TABLE port_fixed_ips;
ALTER TABLE port_fixed_ips_keyed RENAME TO port_fixed_ips;
CREATE INDEX port_fixed_ips_port ON port_fixed_ips(port_id, position);

CREATE TABLE port_security_groups_keyed (
    port_id           TEXT NOT NULL REFERENCES ports(id) ON DELETE CASCADE,
    security_group_id TEXT NOT NULL,
    position          INTEGER NOT NULL,
    PRIMARY KEY (port_id, security_group_id)
) WITHOUT ROWID;
INSERT INTO port_security_groups_keyed
    SELECT port_id, security_group_id, rowid FROM port_security_groups;
DROP TABLE port_security_groups;
ALTER TABLE port_security_groups_keyed RENAME TO port_security_groups;
CREATE INDEX port_security_groups_group ON port_security_groups(security_group_id);

-- Ports are looked up by network only where a scan of the network's ports is fine (its
-- delete, the agents' sync, list filters): the (network_id, mac_address) key serves.
DROP INDEX ports_network;
