package node

import (
	"context"
	"fmt"
	"net"
	"sort"
	"strings"

	"github.com/vishvananda/netlink"
	"golang.org/x/sys/unix"

	"github.com/vipd/vipd/election"
)

// LinkState is what eligibility needs to know about one interface.
type LinkState struct {
	Exists bool
	Up     bool // administratively up and with carrier
}

// Eligibility is the rule that turns link states into a group's election
// input: a group is eligible only while every interface it binds on is up,
// since an owner behind a dead link holds the VIP for nobody. (Health checks
// and priority weights will feed the same function.)
func Eligibility(g Group, links map[string]LinkState) election.Input {
	var down []string
	seen := map[string]bool{}
	for _, v := range g.VIPs {
		if seen[v.Interface] {
			continue
		}
		seen[v.Interface] = true
		switch st := links[v.Interface]; {
		case !st.Exists:
			down = append(down, "link "+v.Interface+" missing")
		case !st.Up:
			down = append(down, "link "+v.Interface+" down")
		}
	}
	sort.Strings(down)
	return election.Input{Eligible: len(down) == 0, Priority: g.Priority, Reason: strings.Join(down, ", ")}
}

// linkUp treats an interface as usable when it is up and has carrier;
// drivers that do not report an operational state (OperUnknown) count as up
// when RUNNING.
func linkUp(l netlink.Link) bool {
	a := l.Attrs()
	if a.Flags&net.FlagUp == 0 {
		return false
	}
	switch a.OperState {
	case netlink.OperUp:
		return true
	case netlink.OperUnknown:
		return a.RawFlags&unix.IFF_RUNNING != 0
	}
	return false
}

// WatchLinks feeds each group's eligibility to apply: once before it returns
// (so an election never starts from a guess), then from a goroutine on every
// change of the links the groups use, until ctx is done. The returned channel
// yields the watch's end (nil when ctx ended).
func WatchLinks(ctx context.Context, groups []Group, apply func(group string, in election.Input)) (<-chan error, error) {
	updates := make(chan netlink.LinkUpdate, 32)
	done := make(chan struct{})
	if err := netlink.LinkSubscribe(updates, done); err != nil {
		return nil, fmt.Errorf("subscribing to link updates: %w", err)
	}
	states := map[string]LinkState{}
	for _, g := range groups {
		for _, v := range g.VIPs {
			if l, err := netlink.LinkByName(v.Interface); err == nil {
				states[v.Interface] = LinkState{Exists: true, Up: linkUp(l)}
			} else {
				states[v.Interface] = LinkState{}
			}
		}
	}
	last := map[string]election.Input{}
	evaluate := func() {
		for _, g := range groups {
			in := Eligibility(g, states)
			if prev, ok := last[g.Name]; ok && prev == in {
				continue
			}
			last[g.Name] = in
			apply(g.Name, in)
		}
	}
	evaluate()
	end := make(chan error, 1)
	go func() {
		defer close(done)
		end <- watchLinkUpdates(ctx, updates, states, evaluate)
	}()
	return end, nil
}

func watchLinkUpdates(ctx context.Context, updates <-chan netlink.LinkUpdate, states map[string]LinkState, evaluate func()) error {
	for {
		select {
		case <-ctx.Done():
			return nil
		case u, ok := <-updates:
			if !ok {
				return fmt.Errorf("link updates: subscription closed")
			}
			name := u.Attrs().Name
			if _, watched := states[name]; !watched {
				continue
			}
			if u.Header.Type == unix.RTM_DELLINK {
				states[name] = LinkState{}
			} else {
				states[name] = LinkState{Exists: true, Up: linkUp(u.Link)}
			}
			evaluate()
		}
	}
}
