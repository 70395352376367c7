package image

import (
	"archive/tar"
	"bytes"
	"errors"
	"fmt"
	"io"
	"os"
	"path/filepath"
	"reflect"
	"strings"
	"testing"
	"time"

	v1 "github.com/google/go-containerregistry/pkg/v1"
	"github.com/google/go-containerregistry/pkg/v1/types"
)

var testMeta = Meta{
	Ref:      "registry.example/vipd/vipd:v9.9.9",
	Version:  "v9.9.9",
	Revision: "0123456789abcdef0123456789abcdef01234567",
	Created:  time.Date(2024, 5, 6, 7, 8, 9, 0, time.UTC),
	Arch:     "amd64",
}

// layerFiles reads every entry of the image's layers (the image as a
// container runtime would unpack it).
func layerFiles(t *testing.T, img v1.Image) (headers []*tar.Header, contents map[string][]byte) {
	t.Helper()
	layers, err := img.Layers()
	if err != nil {
		t.Fatal(err)
	}
	contents = map[string][]byte{}
	for _, l := range layers {
		rc, err := l.Uncompressed()
		if err != nil {
			t.Fatal(err)
		}
		tr := tar.NewReader(rc)
		for {
			h, err := tr.Next()
			if errors.Is(err, io.EOF) {
				break
			}
			if err != nil {
				t.Fatal(err)
			}
			b, err := io.ReadAll(tr)
			if err != nil {
				t.Fatal(err)
			}
			headers = append(headers, h)
			contents[h.Name] = b
		}
		rc.Close()
	}
	return headers, contents
}

func TestAssemble(t *testing.T) {
	bin := []byte("\x7fELF not really a binary")
	img, err := Assemble(bin, testMeta)
	if err != nil {
		t.Fatal(err)
	}
	mt, err := img.MediaType()
	if err != nil || mt != types.OCIManifestSchema1 {
		t.Errorf("manifest media type %q, %v; want OCI", mt, err)
	}
	m, err := img.Manifest()
	if err != nil {
		t.Fatal(err)
	}
	if m.Config.MediaType != types.OCIConfigJSON || len(m.Layers) != 1 || m.Layers[0].MediaType != types.OCILayer {
		t.Errorf("manifest %+v: want an OCI config and one OCI gzip layer", m)
	}
	cf, err := img.ConfigFile()
	if err != nil {
		t.Fatal(err)
	}
	if cf.OS != "linux" || cf.Architecture != "amd64" || !cf.Created.Time.Equal(testMeta.Created) {
		t.Errorf("config os/arch/created %s/%s/%s", cf.OS, cf.Architecture, cf.Created)
	}
	want := v1.Config{Entrypoint: []string{"/usr/bin/vipd"}, Cmd: []string{"run", "--config", "/etc/vipd/vipd.yaml"},
		Env: []string{"PATH=" + Path}, User: "0:0", Labels: map[string]string{
			"org.opencontainers.image.source":      "https://github.com/vipd/vipd",
			"org.opencontainers.image.revision":    testMeta.Revision,
			"org.opencontainers.image.version":     "v9.9.9",
			"org.opencontainers.image.licenses":    Licenses,
			"org.opencontainers.image.title":       "vipd",
			"org.opencontainers.image.description": Description,
		}}
	if !reflect.DeepEqual(cf.Config, want) {
		t.Errorf("config\n%+v\nwant\n%+v", cf.Config, want)
	}

	headers, contents := layerFiles(t, img)
	var names []string
	for _, h := range headers {
		names = append(names, fmt.Sprintf("%s %c %o %d:%d %s", h.Name, h.Typeflag, h.Mode, h.Uid, h.Gid, h.ModTime.UTC().Format(time.RFC3339)))
	}
	ts := testMeta.Created.Format(time.RFC3339)
	wantNames := []string{"usr/ 5 755 0:0 " + ts, "usr/bin/ 5 755 0:0 " + ts, "usr/bin/vipd 0 755 0:0 " + ts}
	if !reflect.DeepEqual(names, wantNames) {
		t.Errorf("layer entries\n%q\nwant\n%q", names, wantNames)
	}
	if !bytes.Equal(contents["usr/bin/vipd"], bin) {
		t.Error("usr/bin/vipd in the layer is not the binary")
	}
}

// The digest depends on the binary and the metadata, nothing else.
func TestAssembleDigest(t *testing.T) {
	digest := func(bin string, m Meta) v1.Hash {
		t.Helper()
		img, err := Assemble([]byte(bin), m)
		if err != nil {
			t.Fatal(err)
		}
		d, err := img.Digest()
		if err != nil {
			t.Fatal(err)
		}
		return d
	}
	base := digest("binary", testMeta)
	if again := digest("binary", testMeta); again != base {
		t.Fatalf("same input, digests %s and %s", base, again)
	}
	changed := func(f func(*Meta)) Meta { m := testMeta; f(&m); return m }
	for _, tc := range []struct {
		name string
		bin  string
		meta Meta
	}{
		{"binary", "binary2", testMeta},
		{"version", "binary", changed(func(m *Meta) { m.Version = "v1" })},
		{"revision", "binary", changed(func(m *Meta) { m.Revision = "abc" })},
		{"created", "binary", changed(func(m *Meta) { m.Created = m.Created.Add(time.Second) })},
		{"arch", "binary", changed(func(m *Meta) { m.Arch = "arm64" })},
	} {
		if d := digest(tc.bin, tc.meta); d == base {
			t.Errorf("%s changed, digest did not", tc.name)
		}
	}
	// The reference names the image; it is not part of it.
	if d := digest("binary", changed(func(m *Meta) { m.Ref = "other.example/x:y" })); d != base {
		t.Errorf("the reference changed the digest")
	}
}

func TestResolve(t *testing.T) {
	root := t.TempDir() // no git here: revision and time fall back
	if err := os.MkdirAll(filepath.Join(root, "deploy"), 0o755); err != nil {
		t.Fatal(err)
	}
	write := func(s string) {
		if err := os.WriteFile(filepath.Join(root, ImageFile), []byte(s), 0o644); err != nil {
			t.Fatal(err)
		}
	}
	write("registry.example/team/vipd:v1.2.3\n")
	t.Setenv("SOURCE_DATE_EPOCH", "")
	m, _, err := resolve(t.Context(), Options{Root: root, Arch: "arm64"})
	if err != nil {
		t.Fatal(err)
	}
	want := Meta{Ref: "registry.example/team/vipd:v1.2.3", Version: "v1.2.3", Revision: "unknown", Created: time.Unix(0, 0).UTC(), Arch: "arm64"}
	if !reflect.DeepEqual(m, want) {
		t.Errorf("resolve = %+v, want %+v", m, want)
	}

	t.Setenv("SOURCE_DATE_EPOCH", "1700000000")
	m, _, err = resolve(t.Context(), Options{Root: root, Version: "v2", Revision: "r"})
	if err != nil {
		t.Fatal(err)
	}
	if !m.Created.Equal(time.Unix(1700000000, 0)) || m.Version != "v2" || m.Revision != "r" {
		t.Errorf("SOURCE_DATE_EPOCH and explicit values: %+v", m)
	}

	for _, tc := range []struct{ name, image, epoch, want string }{
		{"bad epoch", "r.example/v:1", "yesterday", `SOURCE_DATE_EPOCH="yesterday": not a number`},
		{"two refs", "a.example/v:1 b.example/v:2", "", "want one image reference"},
		{"empty", "\n", "", "want one image reference"},
		{"bad ref", "r.example/V:UPPER case", "", "want one image reference"},
		{"bad tag", "r.example/v:t!g", "", `image reference "r.example/v:t!g"`},
		{"no tag", "r.example/v", "", `image reference "r.example/v"`},
	} {
		write(tc.image)
		t.Setenv("SOURCE_DATE_EPOCH", tc.epoch)
		_, _, err := resolve(t.Context(), Options{Root: root})
		if err == nil || !strings.Contains(err.Error(), tc.want) {
			t.Errorf("%s: err %v, want one containing %q", tc.name, err, tc.want)
		}
	}
}

// Both tarball formats read back (with go-containerregistry) as the image
// that was written; the OCI archive keeps the digest, and writing twice
// gives the same bytes.
func TestWriteFileRoundTrip(t *testing.T) {
	img, err := Assemble([]byte("binary"), testMeta)
	if err != nil {
		t.Fatal(err)
	}
	want, _ := img.Digest()
	wantCfg, _ := img.ConfigName()
	dir := t.TempDir()
	for _, f := range []Format{OCI, Docker} {
		var sums [2][]byte
		for i := range sums {
			p := filepath.Join(dir, fmt.Sprintf("%s-%d.tar", f, i))
			if err := WriteFile(p, img, testMeta.Ref, f); err != nil {
				t.Fatal(err)
			}
			if sums[i], err = os.ReadFile(p); err != nil {
				t.Fatal(err)
			}
			back, err := ReadFile(p, t.TempDir())
			if err != nil {
				t.Fatalf("%s: %v", f, err)
			}
			cfg, err := back.ConfigName()
			if err != nil || cfg != wantCfg {
				t.Errorf("%s: config %s, %v; want %s", f, cfg, err, wantCfg)
			}
			d, err := back.Digest()
			if err != nil {
				t.Fatal(err)
			}
			if f == OCI && d != want {
				t.Errorf("oci archive reads back as %s, want %s", d, want)
			}
			_, contents := layerFiles(t, back)
			if string(contents["usr/bin/vipd"]) != "binary" {
				t.Errorf("%s: usr/bin/vipd reads back as %q", f, contents["usr/bin/vipd"])
			}
		}
		if !bytes.Equal(sums[0], sums[1]) {
			t.Errorf("%s: two writes of one image differ", f)
		}
	}
	if err := WriteFile(filepath.Join(dir, "x.tar"), img, testMeta.Ref, "zip"); err == nil || !strings.Contains(err.Error(), `format "zip"`) {
		t.Errorf("unknown format: %v", err)
	}
	if _, err := os.Stat(filepath.Join(dir, "x.tar")); !errors.Is(err, os.ErrNotExist) {
		t.Errorf("a failed write left its file: %v", err)
	}
}
