package manifest

import (
	"fmt"
	"net/netip"
	"os"

	"github.com/vipd/vipd/internal/config"
)

// workstation is the config.Host of the machine that writes the manifest,
// which is not the node that runs it: every interface is taken to exist,
// and a VIP without one is left for vipd to resolve on the node.
type workstation struct{}

func (workstation) InterfaceExists(string) bool            { return true }
func (workstation) InterfaceFor(netip.Addr) (string, bool) { return "", true }

// Load reads, decodes and validates the config at path as the node would,
// except for what only the node knows (its interfaces). keyFile, when not
// empty, is where this machine holds the gossip key that the config names as
// gossip.keyFile on the node (the generator puts it into a Secret).
// It returns the config and the file's bytes (the ConfigMap holds them as
// written, comments included).
func Load(path, keyFile string) (*config.Config, []byte, error) {
	raw, err := os.ReadFile(path)
	if err != nil {
		return nil, nil, err
	}
	cfg, err := config.Parse(raw)
	if err != nil {
		return nil, nil, fmt.Errorf("%s: %w", path, err)
	}
	nodePath := ""
	if keyFile != "" {
		if cfg.Gossip == nil || cfg.Gossip.KeyFile == "" {
			return nil, nil, fmt.Errorf("--gossip-key %s: the config sets no gossip.keyFile, so vipd would not use the key", keyFile)
		}
		nodePath, cfg.Gossip.KeyFile = cfg.Gossip.KeyFile, keyFile
	}
	err = cfg.Validate(workstation{})
	if nodePath != "" {
		cfg.Gossip.KeyFile = nodePath
	}
	if err != nil {
		if keyFile == "" && cfg.Gossip != nil && cfg.Gossip.KeyFile != "" {
			if _, serr := os.Stat(cfg.Gossip.KeyFile); serr != nil {
				// The usual case on a workstation: the key lives elsewhere.
				return nil, nil, fmt.Errorf("%s: %w\n(the key is read here to fill the Secret: give its local copy with --gossip-key FILE)", path, err)
			}
		}
		return nil, nil, fmt.Errorf("%s: %w", path, err)
	}
	return cfg, raw, nil
}
