package lease

import (
	"context"
	"errors"
	"fmt"
	"testing"

	apierrors "k8s.io/apimachinery/pkg/api/errors"
	"k8s.io/apimachinery/pkg/runtime/schema"
)

func TestRenewErrKind(t *testing.T) {
	gr := schema.GroupResource{Group: "coordination.k8s.io", Resource: "leases"}
	for _, tc := range []struct {
		err  error
		want string
	}{
		{nil, ""},
		{apierrors.NewConflict(gr, "l", errors.New("changed")), "conflict"},
		{apierrors.NewNotFound(gr, "l"), "not-found"},
		{fmt.Errorf("put: %w", context.DeadlineExceeded), "timeout"},
		{apierrors.NewServerTimeout(gr, "update", 1), "timeout"},
		{apierrors.NewForbidden(gr, "l", errors.New("rbac")), "api"},
		{errors.New("connection refused"), "api"},
	} {
		if got := renewErrKind(tc.err); got != tc.want {
			t.Errorf("renewErrKind(%v) = %q, want %q", tc.err, got, tc.want)
		}
	}
}
