package kubetest

import (
	"net/http"

	"github.com/vipd/vipd/internal/lab"
)

// InLab is the Options for a control plane that runs in the lab namespace
// api (fixed ports on its lab address) and that this process reaches from
// the lab's client namespace, as the Lease lab tests, the bench and
// `vipd chaos` need.
func InLab(l *lab.Lab, api *lab.Host) Options {
	return Options{
		Address: api.IPv4.Addr().String(),
		Start: func(name string, args ...string) (Process, error) {
			return l.Start(api, name, args...)
		},
		Dial: l.Client.HTTPClient().Transport.(*http.Transport).DialContext,
	}
}
