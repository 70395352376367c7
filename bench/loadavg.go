package main

import (
	"fmt"
	"os"
	"strconv"
	"strings"
	"sync"
	"time"
)

// loadStats summarises the machine's 1-minute load average sampled during
// a measurement window: on the shared machine it says how much else ran.
type loadStats struct {
	n              int
	min, mean, max float64
}

func (s loadStats) String() string {
	if s.n == 0 {
		return "n/a"
	}
	return fmt.Sprintf("%.2f/%.2f/%.2f", s.min, s.mean, s.max)
}

// summariseLoad is the min/mean/max of samples.
func summariseLoad(samples []float64) loadStats {
	if len(samples) == 0 {
		return loadStats{}
	}
	s := loadStats{n: len(samples), min: samples[0], max: samples[0]}
	sum := 0.0
	for _, v := range samples {
		s.min, s.max = min(s.min, v), max(s.max, v)
		sum += v
	}
	s.mean = sum / float64(len(samples))
	return s
}

// parseLoadavg reads the 1-minute figure of a /proc/loadavg line.
func parseLoadavg(line string) (float64, error) {
	f := strings.Fields(line)
	if len(f) == 0 {
		return 0, fmt.Errorf("/proc/loadavg %q: empty", line)
	}
	v, err := strconv.ParseFloat(f[0], 64)
	if err != nil {
		return 0, fmt.Errorf("/proc/loadavg %q: first field: %w", line, err)
	}
	return v, nil
}

func readLoadavg() (float64, bool) {
	b, err := os.ReadFile("/proc/loadavg")
	if err != nil {
		return 0, false
	}
	v, err := parseLoadavg(string(b))
	return v, err == nil
}

// loadSampler samples the load average every interval until stop.
type loadSampler struct {
	mu      sync.Mutex
	samples []float64
	done    chan struct{}
	wg      sync.WaitGroup
}

func startLoadSampler(every time.Duration) *loadSampler {
	s := &loadSampler{done: make(chan struct{})}
	s.sample()
	s.wg.Go(func() {
		t := time.NewTicker(every)
		defer t.Stop()
		for {
			select {
			case <-s.done:
				return
			case <-t.C:
				s.sample()
			}
		}
	})
	return s
}

func (s *loadSampler) sample() {
	if v, ok := readLoadavg(); ok {
		s.mu.Lock()
		s.samples = append(s.samples, v)
		s.mu.Unlock()
	}
}

// stop ends sampling (one last sample) and summarises.
func (s *loadSampler) stop() loadStats {
	close(s.done)
	s.wg.Wait()
	s.sample()
	return summariseLoad(s.samples)
}
