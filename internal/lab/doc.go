// Package lab builds a throw-away layer-2 network out of Linux network
// namespaces for tests, `vipd demo` and benchmarks.
//
// Topology (one instance; every name carries the instance ID and creator PID):
//
//	vl-<id>-<pid>-sw      switch namespace: bridge "br0" (no STP, forward_delay 0,
//	                      multicast snooping off, IPv6 disabled so it never speaks)
//	  port "client"  <-veth->  vl-<id>-<pid>-client : eth0 198.51.100.2/24   2001:db8::2/64
//	  port "node1"   <-veth->  vl-<id>-<pid>-node1  : eth0 198.51.100.11/24  2001:db8::11/64
//	  port "nodeN"   <-veth->  vl-<id>-<pid>-nodeN  : eth0 198.51.100.(10+N)  2001:db8::(10+N)
//	  port "<extra>" <-veth->  vl-<id>-<pid>-<extra>: eth0 198.51.100.(200+j) 2001:db8::(200+j)
//	  port "observer"<-veth->  vl-<id>-<pid>-observer: eth0 198.51.100.3  2001:db8::3 (ARP/NDP sampling)
//	VIPs (by convention, unused by hosts): 198.51.100.(100+i), 2001:db8::(100+i)
//
// IPv6 host parts are the decimal IPv4 octet written with the same digits
// (node1 = .11 = ::11, which is 0x11), so addresses read alike in both families.
//
// Implementation choices (why):
//   - Configuration uses github.com/vishvananda/netlink handles bound to each
//     namespace: in-process, typed errors, no output parsing, and no fork per
//     step on a loaded 2-core CI box.
//   - Namespace lifecycle uses `ip netns add/del` (one `ip -batch` call each):
//     iproute2 makes /run/netns a shared mount, so deletions propagate into the
//     mount namespaces of processes started with `ip netns exec`; doing that by
//     hand would duplicate subtle iproute2 logic that every other tool on the
//     machine relies on.
//   - Processes start via `ip netns exec`, which also remounts /sys for the
//     namespace, so the process sees exactly the lab's interfaces.
//   - The bridge is created with `ip link add ... type bridge forward_delay 0`
//     because netlink v1.3.1 cannot set forward_delay/stp_state.
//   - WatchAddrs follows addresses of several hosts on ONE netlink socket
//     (NETLINK_LISTEN_ALL_NSID, in the switch namespace), so events carry the
//     kernel's order across namespaces; per-namespace sockets read by
//     separate goroutines cannot order them under load.
//   - Veth pairs are created from the switch namespace with the peer placed
//     directly into the host namespace; nothing ever exists in the root
//     namespace, so names cannot collide with the machine or other labs.
package lab
