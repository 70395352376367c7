package config

// UnauthenticatedPaths names every way a host on the network could take
// part in this config's election without proving who it is, one sentence
// each (empty: none). /status and `vipd doctor` show them, so an operator
// sees an open door without reading the schema (docs/security.md).
func (c *Config) UnauthenticatedPaths() []string {
	var paths []string
	switch c.Mode {
	case "vrrp":
		// RFC 9568 removed VRRP authentication; keepalived's is a
		// plain-text password. The segment is the trust boundary.
		paths = append(paths, "vrrp: adverts carry no authentication (RFC 9568): any host on the segment can claim a VRID with a higher priority; keep the segment to trusted hosts")
	case "gossip":
		// Validation refuses a keyless gossip config unless it says
		// insecure: true; only then is there an open door to report.
		if c.Gossip != nil && c.Gossip.Insecure && c.Gossip.KeyFile == "" {
			paths = append(paths, "gossip: gossip.insecure is true (no gossip.keyFile): any host that reaches the gossip port can join the cluster and take VIPs")
		}
	}
	return paths
}
