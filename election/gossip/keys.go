package gossip

import (
	"context"
	"errors"
	"slices"
	"time"
)

// keyError counts a memberlist message about undecryptable traffic. A
// wrong-key peer retries every rejoin interval, so the error is logged at most
// once a minute, with the count; memberlist's own line goes to debug.
func (e *Elector) keyError(line string) {
	e.mu.Lock()
	e.keyErrors++
	n := e.keyErrors
	e.lastKeyErr = line
	now := e.now()
	logIt := now.Sub(e.keyErrLogged) >= time.Minute
	if logIt {
		e.keyErrLogged = now
	}
	e.mu.Unlock()
	if logIt {
		e.log.Error("gossip: received traffic this node cannot decrypt or that is unencrypted: a peer uses a different gossip key (gossip.keyFile)",
			"detail", line, "count", n)
	}
}

// keyLoop replaces the keyring when the key source changes: add new keys,
// switch the primary, then drop keys no longer listed.
func (e *Elector) keyLoop(ctx context.Context) {
	t := time.NewTicker(e.opts.KeyPollInterval)
	defer t.Stop()
	for {
		select {
		case <-ctx.Done():
			return
		case <-t.C:
		}
		keys, err := e.opts.KeySource()
		if err != nil {
			e.log.Warn("gossip: reading keys; keeping the current keyring", "err", err)
			continue
		}
		if err := e.applyKeys(keys); err != nil {
			e.log.Warn("gossip: updating keyring", "err", err)
		}
	}
}

func (e *Elector) applyKeys(keys [][]byte) error {
	if len(keys) == 0 {
		return errors.New("no keys: keeping the current keyring (disabling encryption needs a restart)")
	}
	kr := e.keyring
	have := kr.GetKeys()
	same := len(have) == len(keys) && string(kr.GetPrimaryKey()) == string(keys[0])
	for _, k := range keys {
		if !slices.ContainsFunc(have, func(h []byte) bool { return string(h) == string(k) }) {
			same = false
		}
	}
	if same {
		return nil
	}
	for _, k := range keys {
		if err := kr.AddKey(k); err != nil {
			return err
		}
	}
	if err := kr.UseKey(keys[0]); err != nil {
		return err
	}
	for _, h := range kr.GetKeys() {
		if !slices.ContainsFunc(keys, func(k []byte) bool { return string(h) == string(k) }) {
			if err := kr.RemoveKey(h); err != nil {
				return err
			}
		}
	}
	e.log.Info("gossip keyring updated", "keys", len(keys))
	return nil
}
