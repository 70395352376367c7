package kubevip

// Why whole families of kube-vip variables have no vipd equivalent. Each
// warning names the variable and gives one of these reasons.
const (
	whyServices = "kube-vip's Service load balancing (Services of type LoadBalancer) is not carried over: vipd holds the VIPs written in its config and does not watch Services; keep kube-vip for Services only (cp_enable=false) or use another Service load balancer"
	whyBGP      = "BGP is not carried over: vipd announces VIPs on the local link only (gratuitous ARP / unsolicited NA), so every node must have an interface in the VIP's subnet; it does not peer with routers"
	whyLB       = "kube-vip's IPVS load balancing across control-plane nodes is not carried over: vipd moves the VIP to one node and balances nothing (put HAProxy or nginx behind the VIP if you need that)"
	whyRouting  = "routing-table mode is not carried over: vipd binds the VIP on an interface, it does not install routes"
	whyEgress   = "egress SNAT for Services is not part of vipd"
	whyDHCP     = "DHCP-allocated VIPs are not supported: vipd needs the VIP's address in its config"
	whyIgnored  = "has no vipd equivalent and is ignored"
)

// ignored lists the kube-vip variables (pkg/kubevip/config_envvar.go) that
// convert does not map, with the reason, and the value at which nothing is
// lost (kube-vip's default, which its manifest generator writes out): for a
// switch "false" (any spelling strconv.ParseBool reads), "" for none.
var ignored = map[string]struct {
	why string
	off string
}{
	// Services.
	"svc_namespace":                  {whyServices, ""},
	"svc_election":                   {whyServices, "false"},
	"svc_leasename":                  {whyServices, ""},
	"vip_servicesinterface":          {whyServices, ""},
	"lb_class_only":                  {whyServices, "false"},
	"lb_class_name":                  {whyServices, ""},
	"lb_class_legacy_handling":       {whyServices, "false"},
	"enable_service_security":        {whyServices, "false"},
	"enable_endpoints":               {whyServices, "false"},
	"disable_service_updates":        {whyServices, "false"},
	"per_service_election_on_demand": {whyServices, "false"},
	"backend_health_check_interval":  {whyServices, ""},
	"mirror_dest_interface":          {whyServices, ""},
	"iptables_backend":               {whyServices, ""},
	"enable_upnp":                    {whyServices, "false"},
	// BGP and its relatives.
	"bgp_attach_ip_to_interface":         {whyBGP, "false"},
	"bgp_routerid":                       {whyBGP, ""},
	"bgp_routerinterface":                {whyBGP, ""},
	"bgp_as":                             {whyBGP, ""},
	"bgp_peeraddress":                    {whyBGP, ""},
	"bgp_peers":                          {whyBGP, ""},
	"bgp_peeras":                         {whyBGP, ""},
	"bgp_peerpass":                       {whyBGP, ""},
	"bgp_multihop":                       {whyBGP, "false"},
	"bgp_sourceif":                       {whyBGP, ""},
	"bgp_sourceip":                       {whyBGP, ""},
	"bgp_hold_time":                      {whyBGP, ""},
	"bgp_keepalive_interval":             {whyBGP, ""},
	"zebra_enable":                       {whyBGP, "false"},
	"zebra_url":                          {whyBGP, ""},
	"zebra_version":                      {whyBGP, ""},
	"zebra_software_name":                {whyBGP, ""},
	"mpbgp_nexthop":                      {whyBGP, ""},
	"mpbgp_ipv4":                         {whyBGP, ""},
	"mpbgp_ipv6":                         {whyBGP, ""},
	"control_plane_health_check_address": {whyBGP + "; for the control-plane VIP convert adds vipd's own apiserver check", ""},
	"control_plane_health_check_period_seconds":    {whyBGP, ""},
	"control_plane_health_check_timeout_seconds":   {whyBGP, ""},
	"control_plane_health_check_failure_threshold": {whyBGP, ""},
	"control_plane_health_check_ca_path":           {whyBGP, ""},
	// kube-vip's own load balancer.
	"lb_enable":    {whyLB, "false"},
	"lb_port":      {whyLB, ""},
	"lb_fwdmethod": {whyLB, ""},
	// Routing table and wireguard modes.
	"vip_routingtable":      {whyRouting, "false"},
	"vip_routingtableid":    {whyRouting, ""},
	"vip_routingtabletype":  {whyRouting, ""},
	"vip_routingprotocol":   {whyRouting, ""},
	"vip_cleanroutingtable": {whyRouting, "false"},
	"vip_wireguard":         {"wireguard mode is not carried over: vipd binds VIPs on a local interface", "false"},
	// Egress.
	"egress_podcidr":            {whyEgress, ""},
	"egress_servicecidr":        {whyEgress, ""},
	"egress_withnftables":       {whyEgress, "false"},
	"egress_enableinternalsnat": {whyEgress, "false"},
	"egress_clean":              {whyEgress, "false"},
	// DHCP.
	"dhcp_mode":             {whyDHCP, "ipv4"},
	"dhcp_backoff_attempts": {whyDHCP, ""},
	// The rest.
	"vip_preserve_on_leadership_loss":    {"is not carried over: a vipd node that loses ownership always removes the VIP (and the kernel removes it by itself after binding.lifetime if vipd dies)", "false"},
	"vip_singlenode":                     {"is not carried over: with one node, any vipd mode holds the VIP; mode static needs no election at all", "false"},
	"vip_startleader":                    {"is not carried over: vipd elects the owner by priority (groups[].priority)", "false"},
	"vip_interfaceloglobal":              {"is not carried over: vipd does not bind VIPs on lo", "false"},
	"vip_allow_interface_not_up":         {"is not carried over: vipd binds on a down interface like any other; track an interface check to move the VIP away instead", "false"},
	"vip_skipdad":                        {whyIgnored + " (vipd adds VIPs without duplicate address detection)", "false"},
	"vip_leaseannotations":               {whyIgnored + " (vipd's Leases carry no extra annotations)", ""},
	"enable_node_labeling":               {"is not carried over: vipd does not label nodes; a notify hook (groups[].notify) can run kubectl label on transitions", "false"},
	"cp_detect":                          {whyIgnored + ": vipd's lease mode talks to lease.server (or the kubeconfig's server)", "false"},
	"dns_mode":                           {whyIgnored + ": vipd needs the VIP as an address, not a DNS name", "first"},
	"annotation":                         {whyIgnored + " (kube-vip's annotation prefix for Services)", ""},
	"instance_name":                      {whyIgnored, ""},
	"debounce_time":                      {whyIgnored, ""},
	"health_check_port":                  {whyIgnored + ": vipd serves /healthz and /readyz on http.listen (default 127.0.0.1:9610)", ""},
	"prometheus_server":                  {whyIgnored + ": vipd serves its status on http.listen (default 127.0.0.1:9610)", ":2112"},
	"vip_loglevel":                       {whyIgnored + ": use vipd run --log-level", ""},
	"vip_loseleadership_timeout_seconds": {whyIgnored + ": the interface check convert adds for vip_loseleadership fails after its fall count (2 × 1s)", ""},
	"config_file":                        {"is not read: kube-vip reads more settings from that file, which convert cannot see; convert them by hand", ""},
}
