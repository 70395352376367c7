// Package image builds vipd's container image without a Docker engine: the
// static binary, one layer holding it at /usr/bin/vipd, and a config with
// the same entrypoint, user and OCI labels as the Dockerfile at the
// repository root (a test keeps the two in agreement). Everything that
// could vary between two builds of one commit is fixed (file times, owners,
// modes, the creation time, gzip settings), so the digest is reproducible.
package image

import (
	"archive/tar"
	"bytes"
	"compress/gzip"
	"context"
	"errors"
	"fmt"
	"io"
	"os"
	"os/exec"
	"path/filepath"
	"runtime"
	"strconv"
	"strings"
	"time"

	"github.com/google/go-containerregistry/pkg/name"
	v1 "github.com/google/go-containerregistry/pkg/v1"
	"github.com/google/go-containerregistry/pkg/v1/empty"
	"github.com/google/go-containerregistry/pkg/v1/mutate"
	"github.com/google/go-containerregistry/pkg/v1/tarball"
	"github.com/google/go-containerregistry/pkg/v1/types"
)

// The facts the Dockerfile must state the same way (dockerfile_test.go).
const (
	BinaryPath = "/usr/bin/vipd"
	// ConfigPath is where the default command (and every manifest under
	// deploy/) expects the config: a read-only mount.
	ConfigPath = "/etc/vipd/vipd.yaml"
	// User is root, on purpose: vipd needs CAP_NET_ADMIN and CAP_NET_RAW in
	// the host's network namespace. A non-root UID gets added capabilities
	// only as file capabilities, and those are ignored under no_new_privs,
	// i.e. Kubernetes' allowPrivilegeEscalation: false, which every shipped
	// manifest sets. So: UID 0 with every capability dropped but those two,
	// a read-only root filesystem and no privilege escalation (docs/image.md).
	User = "0:0"
	Path = "/usr/local/sbin:/usr/local/bin:/usr/sbin:/usr/bin:/sbin:/bin"

	Source      = "https://github.com/vipd/vipd"
	Title       = "vipd"
	Description = "vipd holds virtual IPs highly available (VRRP, Kubernetes Lease, gossip or static)"
	// Licenses is an SPDX expression. The repository carries no LICENSE file
	// yet, so the image asserts none; change it here and in the Dockerfile.
	Licenses = "NOASSERTION"

	// ImageFile holds the one image reference every manifest names.
	ImageFile = "deploy/IMAGE"
)

// Entrypoint and Cmd of the image: `vipd run --config /etc/vipd/vipd.yaml`
// unless the pod or `podman run` gives other arguments.
var (
	Entrypoint = []string{BinaryPath}
	Cmd        = []string{"run", "--config", ConfigPath}
)

// Meta is what varies between builds: it names the commit and the release.
type Meta struct {
	Ref      string    // image reference, e.g. ghcr.io/vipd/vipd:v0.1.0
	Version  string    // vipd's version (main.version) and the version label
	Revision string    // the source commit, for the revision label
	Created  time.Time // image creation time and every file's mtime
	Arch     string    // GOARCH
}

// Labels returns the OCI annotations put on the image config.
func Labels(m Meta) map[string]string {
	return map[string]string{
		"org.opencontainers.image.source":      Source,
		"org.opencontainers.image.revision":    m.Revision,
		"org.opencontainers.image.version":     m.Version,
		"org.opencontainers.image.licenses":    Licenses,
		"org.opencontainers.image.title":       Title,
		"org.opencontainers.image.description": Description,
	}
}

// GoBuildArgs are the `go build` arguments (after "build") for the image's
// binary; the Dockerfile runs the same with ${VERSION}. The environment is
// CGO_ENABLED=0 (a static binary: the image has no libc). -buildvcs=false
// because the Docker build context has no .git: the revision goes in a label
// instead, and both builds compile the same bytes from the same source.
func GoBuildArgs(version, out string) []string {
	return []string{"-trimpath", "-buildvcs=false", "-ldflags=-s -w -X main.version=" + version, "-o", out, "./cmd/vipd"}
}

// Options for Build. Zero values take the defaults named on each field.
type Options struct {
	Root     string    // module root; default: the directory holding go.mod above the working directory
	Ref      string    // default: the content of deploy/IMAGE
	Version  string    // default: the tag of Ref
	Revision string    // default: `git rev-parse HEAD` (+"-dirty" if the tree has changes), else "unknown"
	Created  time.Time // default: $SOURCE_DATE_EPOCH, else the commit time, else the Unix epoch
	Arch     string    // default: runtime.GOARCH
	Go       string    // the go command; default "go" from PATH
	Log      io.Writer // progress and warnings; default io.Discard
}

// Result of Build.
type Result struct {
	Image  v1.Image
	Meta   Meta
	Digest v1.Hash // the manifest digest: what a registry shows after a push
}

// Build compiles vipd and assembles its image.
func Build(ctx context.Context, o Options) (*Result, error) {
	if o.Log == nil {
		o.Log = io.Discard
	}
	m, root, err := resolve(ctx, o)
	if err != nil {
		return nil, err
	}
	dir, err := os.MkdirTemp("", "vipd-image-")
	if err != nil {
		return nil, err
	}
	defer os.RemoveAll(dir)
	bin := filepath.Join(dir, "vipd")
	goCmd := o.Go
	if goCmd == "" {
		goCmd = "go"
	}
	cmd := exec.CommandContext(ctx, goCmd, append([]string{"build"}, GoBuildArgs(m.Version, bin)...)...)
	cmd.Dir = root
	// GOFLAGS from the caller's environment could change the bytes (-race,
	// -tags); CGO off makes the binary static.
	cmd.Env = append(os.Environ(), "CGO_ENABLED=0", "GOOS=linux", "GOARCH="+m.Arch, "GOFLAGS=")
	if out, err := cmd.CombinedOutput(); err != nil {
		return nil, fmt.Errorf("go build ./cmd/vipd: %v\n%s", err, bytes.TrimSpace(out))
	}
	data, err := os.ReadFile(bin)
	if err != nil {
		return nil, err
	}
	img, err := Assemble(data, m)
	if err != nil {
		return nil, err
	}
	d, err := img.Digest()
	if err != nil {
		return nil, err
	}
	return &Result{Image: img, Meta: m, Digest: d}, nil
}

// resolve fills Meta from Options and the repository.
func resolve(ctx context.Context, o Options) (Meta, string, error) {
	root := o.Root
	if root == "" {
		var err error
		if root, err = moduleRoot(); err != nil {
			return Meta{}, "", err
		}
	}
	m := Meta{Ref: o.Ref, Version: o.Version, Revision: o.Revision, Created: o.Created, Arch: o.Arch}
	if m.Ref == "" {
		var err error
		if m.Ref, err = ReadRef(root); err != nil {
			return Meta{}, "", err
		}
	}
	ref, err := name.NewTag(m.Ref, name.StrictValidation)
	if err != nil {
		return Meta{}, "", fmt.Errorf("image reference %q: %w", m.Ref, err)
	}
	if m.Version == "" {
		m.Version = ref.TagStr()
	}
	if m.Revision == "" {
		m.Revision = "unknown"
		if rev, err := git(ctx, root, "rev-parse", "HEAD"); err == nil {
			m.Revision = rev
			if st, err := git(ctx, root, "status", "--porcelain", "--untracked-files=no"); err == nil && st != "" {
				m.Revision += "-dirty"
				fmt.Fprintf(o.Log, "warning: the work tree has uncommitted changes; revision label %s\n", m.Revision)
			}
		}
	}
	if m.Created.IsZero() {
		m.Created = time.Unix(0, 0)
		if s := os.Getenv("SOURCE_DATE_EPOCH"); s != "" {
			sec, err := strconv.ParseInt(s, 10, 64)
			if err != nil {
				return Meta{}, "", fmt.Errorf("SOURCE_DATE_EPOCH=%q: not a number of seconds: %w", s, err)
			}
			m.Created = time.Unix(sec, 0)
		} else if ct, err := git(ctx, root, "log", "-1", "--format=%ct"); err == nil {
			if sec, err := strconv.ParseInt(ct, 10, 64); err == nil {
				m.Created = time.Unix(sec, 0)
			}
		}
	}
	m.Created = m.Created.UTC()
	if m.Arch == "" {
		m.Arch = runtime.GOARCH
	}
	return m, root, nil
}

// ReadRef returns the image reference in root/deploy/IMAGE.
func ReadRef(root string) (string, error) {
	b, err := os.ReadFile(filepath.Join(root, ImageFile))
	if err != nil {
		return "", err
	}
	ref := strings.TrimSpace(string(b))
	if ref == "" || strings.ContainsAny(ref, " \n\t") {
		return "", fmt.Errorf("%s: %q: want one image reference on one line", ImageFile, ref)
	}
	return ref, nil
}

func moduleRoot() (string, error) {
	dir, err := os.Getwd()
	if err != nil {
		return "", err
	}
	for {
		if _, err := os.Stat(filepath.Join(dir, "go.mod")); err == nil {
			return dir, nil
		}
		parent := filepath.Dir(dir)
		if parent == dir {
			return "", errors.New("no go.mod in the working directory or above it")
		}
		dir = parent
	}
}

func git(ctx context.Context, dir string, args ...string) (string, error) {
	cmd := exec.CommandContext(ctx, "git", append([]string{"-C", dir}, args...)...)
	out, err := cmd.Output()
	return strings.TrimSpace(string(out)), err
}

// Assemble makes the image from the binary's bytes: an empty base, one
// layer (usr/, usr/bin/, usr/bin/vipd, root-owned, mtime m.Created) and the
// config. Nothing from the file system reaches the image but the bytes.
func Assemble(binary []byte, m Meta) (v1.Image, error) {
	layerTar, err := binaryLayer(binary, m.Created)
	if err != nil {
		return nil, err
	}
	layer, err := tarball.LayerFromOpener(func() (io.ReadCloser, error) {
		return io.NopCloser(bytes.NewReader(layerTar)), nil
	}, tarball.WithMediaType(types.OCILayer), tarball.WithCompressionLevel(gzip.BestCompression))
	if err != nil {
		return nil, err
	}
	base := mutate.ConfigMediaType(mutate.MediaType(empty.Image, types.OCIManifestSchema1), types.OCIConfigJSON)
	img, err := mutate.Append(base, mutate.Addendum{
		Layer: layer,
		History: v1.History{
			Created:   v1.Time{Time: m.Created},
			CreatedBy: "COPY vipd " + BinaryPath + " # " + runtime.Version() + " build " + strings.Join(GoBuildArgs(m.Version, "vipd"), " "),
			Comment:   "vipd internal/image (daemonless build)",
		},
		MediaType: types.OCILayer,
	})
	if err != nil {
		return nil, err
	}
	cf, err := img.ConfigFile()
	if err != nil {
		return nil, err
	}
	cf = cf.DeepCopy()
	cf.Architecture = m.Arch
	cf.OS = "linux"
	cf.Created = v1.Time{Time: m.Created}
	cf.Config = v1.Config{
		Entrypoint: Entrypoint,
		Cmd:        Cmd,
		Env:        []string{"PATH=" + Path},
		User:       User,
		Labels:     Labels(m),
	}
	return mutate.ConfigFile(img, cf)
}

// binaryLayer is the uncompressed layer tar. Entries are in a fixed order
// with fixed owners and modes; the binary's on-disk mode and times never
// matter.
func binaryLayer(binary []byte, mtime time.Time) ([]byte, error) {
	var buf bytes.Buffer
	tw := tar.NewWriter(&buf)
	rel := strings.TrimPrefix(BinaryPath, "/")
	var dirs []string
	for d := filepath.Dir(rel); d != "."; d = filepath.Dir(d) {
		dirs = append([]string{d}, dirs...)
	}
	for _, d := range dirs {
		if err := tw.WriteHeader(&tar.Header{Typeflag: tar.TypeDir, Name: d + "/", Mode: 0o755, ModTime: mtime, Format: tar.FormatUSTAR}); err != nil {
			return nil, err
		}
	}
	if err := tw.WriteHeader(&tar.Header{Typeflag: tar.TypeReg, Name: rel, Mode: 0o755, Size: int64(len(binary)), ModTime: mtime, Format: tar.FormatUSTAR}); err != nil {
		return nil, err
	}
	if _, err := tw.Write(binary); err != nil {
		return nil, err
	}
	if err := tw.Close(); err != nil {
		return nil, err
	}
	return buf.Bytes(), nil
}
