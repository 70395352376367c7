package lab

import (
	"errors"
	"fmt"
	"net"
	"net/http"
	"sync"
	"sync/atomic"
	"time"
)

// Service is a small HTTP service inside a host's namespace, the target of
// a vipd health check in lab tests: it answers 200 while healthy, 503 while
// not, and refuses connections once stopped (the service "died").
type Service struct {
	host    *Host
	port    int
	healthy atomic.Bool

	mu  sync.Mutex
	srv *http.Server
	// changedAt is when SetHealthy or Stop last changed what it answers.
	changedAt time.Time
}

// StartService listens on 127.0.0.1:port in h's namespace, healthy.
func (h *Host) StartService(port int) (*Service, error) {
	s := &Service{host: h, port: port}
	s.healthy.Store(true)
	return s, s.Start()
}

// URL is the service's health URL as seen from inside its namespace.
func (s *Service) URL() string { return fmt.Sprintf("http://127.0.0.1:%d/healthz", s.port) }

// Start (re)starts a stopped service.
func (s *Service) Start() error {
	s.mu.Lock()
	defer s.mu.Unlock()
	if s.srv != nil {
		return nil
	}
	var ln net.Listener
	// The socket is created inside the namespace and stays there; serving
	// it needs no namespace.
	err := s.host.Do(func() (err error) {
		ln, err = net.Listen("tcp", fmt.Sprintf("127.0.0.1:%d", s.port))
		return err
	})
	if err != nil {
		return fmt.Errorf("service on %s: %w", s.host.Name, err)
	}
	srv := &http.Server{ReadHeaderTimeout: time.Second, Handler: http.HandlerFunc(func(w http.ResponseWriter, _ *http.Request) {
		if s.healthy.Load() {
			_, _ = w.Write([]byte("ok\n"))
			return
		}
		http.Error(w, "unhealthy", http.StatusServiceUnavailable)
	})}
	go func() {
		if err := srv.Serve(ln); err != nil && !errors.Is(err, http.ErrServerClosed) {
			_ = err // the listener was closed under it: the service is down
		}
	}()
	s.srv = srv
	s.changedAt = time.Now()
	return nil
}

// SetHealthy switches between 200 and 503 and returns when it happened.
func (s *Service) SetHealthy(ok bool) time.Time {
	s.mu.Lock()
	defer s.mu.Unlock()
	s.healthy.Store(ok)
	s.changedAt = time.Now()
	return s.changedAt
}

// Stop closes the listener and every connection (the service died) and
// returns when it happened.
func (s *Service) Stop() time.Time {
	s.mu.Lock()
	defer s.mu.Unlock()
	if s.srv != nil {
		_ = s.srv.Close()
		s.srv = nil
	}
	s.changedAt = time.Now()
	return s.changedAt
}
