// Package kube builds Kubernetes API client configurations from vipd's
// settings (a kubeconfig path, an optional server override), for the Lease
// mode (internal/modes) and the endpoints check (internal/health) alike.
package kube

import (
	"errors"
	"fmt"

	"k8s.io/client-go/rest"
	"k8s.io/client-go/tools/clientcmd"
)

// RESTConfig returns the client configuration of the kubeconfig file if set,
// else of the in-cluster service account; then server, if set, replaces the
// server URL (e.g. a control-plane node's own API server, so nothing depends
// on a VIP vipd manages). userAgent names the caller in the API server's
// logs and audit events.
func RESTConfig(kubeconfig, server, userAgent string) (*rest.Config, error) {
	var (
		rc  *rest.Config
		err error
	)
	if kubeconfig != "" {
		rc, err = clientcmd.BuildConfigFromFlags(server, kubeconfig)
		if err != nil {
			return nil, fmt.Errorf("kubeconfig %q: %w", kubeconfig, err)
		}
	} else {
		rc, err = rest.InClusterConfig()
		if err != nil {
			if errors.Is(err, rest.ErrNotInCluster) {
				return nil, errors.New("no kubeconfig is set and vipd does not run in a pod (no in-cluster credentials)")
			}
			return nil, fmt.Errorf("no kubeconfig is set and the in-cluster config is not usable: %w", err)
		}
		if server != "" {
			rc.Host = server
		}
	}
	rc.UserAgent = userAgent
	return rc, nil
}
