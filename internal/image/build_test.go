package image

import (
	"bytes"
	"context"
	"debug/elf"
	"fmt"
	"io/fs"
	"os"
	"os/exec"
	"path/filepath"
	"runtime"
	"strings"
	"sync"
	"testing"
	"time"
)

// The image is built (go build + assemble + OCI archive) once per test
// binary and shared by the tests below and the lab tests.
var built struct {
	once    sync.Once
	dir     string
	res     *Result
	tarball string
	took    time.Duration
	err     error
}

func TestMain(m *testing.M) {
	code := m.Run()
	if built.dir != "" {
		os.RemoveAll(built.dir)
	}
	os.Exit(code)
}

const repoRoot = "../.."

func buildOnce(t *testing.T) (*Result, string) {
	t.Helper()
	built.once.Do(func() {
		start := time.Now()
		built.dir, built.err = os.MkdirTemp("", "vipd-image-test-")
		if built.err != nil {
			return
		}
		ctx, cancel := context.WithTimeout(context.Background(), 10*time.Minute)
		defer cancel()
		built.res, built.err = Build(ctx, Options{Root: repoRoot})
		if built.err != nil {
			return
		}
		built.tarball = filepath.Join(built.dir, "vipd.tar")
		built.err = WriteFile(built.tarball, built.res.Image, built.res.Meta.Ref, OCI)
		built.took = time.Since(start)
	})
	if built.err != nil {
		t.Fatalf("building the image: %v", built.err)
	}
	return built.res, built.tarball
}

// extractBinary reads /usr/bin/vipd out of the image tarball (through
// go-containerregistry, as a runtime would see it) into dir.
func extractBinary(t *testing.T, tarball, dir string) string {
	t.Helper()
	img, err := ReadFile(tarball, t.TempDir())
	if err != nil {
		t.Fatal(err)
	}
	headers, contents := layerFiles(t, img)
	rel := strings.TrimPrefix(BinaryPath, "/")
	for _, h := range headers {
		if h.Name == rel {
			p := filepath.Join(dir, "vipd")
			if err := os.WriteFile(p, contents[rel], os.FileMode(h.Mode).Perm()); err != nil {
				t.Fatal(err)
			}
			return p
		}
	}
	t.Fatalf("%s: no %s in the image's layers", tarball, BinaryPath)
	return ""
}

// Two builds of one commit give one digest, and byte-identical tarballs:
// the second from a copy of the tree at another path (-trimpath), with the
// metadata the first took from git (the copy has no .git).
func TestBuildReproducible(t *testing.T) {
	res, tarball := buildOnce(t)
	st, err := os.Stat(tarball)
	if err != nil {
		t.Fatal(err)
	}
	t.Logf("image %s %s: %s, tarball %d bytes, built in %s", res.Meta.Ref, res.Meta.Arch, res.Digest, st.Size(), built.took.Round(time.Millisecond))

	copyDir := filepath.Join(t.TempDir(), "elsewhere", "vipd")
	copyTree(t, repoRoot, copyDir)
	start := time.Now()
	res2, err := Build(t.Context(), Options{Root: copyDir, Revision: res.Meta.Revision, Created: res.Meta.Created})
	if err != nil {
		t.Fatal(err)
	}
	t.Logf("second build (another path): %s in %s", res2.Digest, time.Since(start).Round(time.Millisecond))
	if res2.Digest != res.Digest {
		cf1, _ := res.Image.RawConfigFile()
		cf2, _ := res2.Image.RawConfigFile()
		t.Fatalf("two builds of one tree: digests %s and %s\nconfig 1: %s\nconfig 2: %s", res.Digest, res2.Digest, cf1, cf2)
	}
	tarball2 := filepath.Join(t.TempDir(), "vipd.tar")
	if err := WriteFile(tarball2, res2.Image, res2.Meta.Ref, OCI); err != nil {
		t.Fatal(err)
	}
	a, _ := os.ReadFile(tarball)
	b, err := os.ReadFile(tarball2)
	if err != nil || !bytes.Equal(a, b) {
		t.Fatalf("the two OCI archives differ (%v)", err)
	}
}

func copyTree(t *testing.T, from, to string) {
	t.Helper()
	err := filepath.WalkDir(from, func(p string, d fs.DirEntry, err error) error {
		if err != nil {
			return err
		}
		rel, err := filepath.Rel(from, p)
		if err != nil {
			return err
		}
		if d.Name() == ".git" {
			if d.IsDir() {
				return filepath.SkipDir
			}
			return nil
		}
		target := filepath.Join(to, rel)
		if d.IsDir() {
			return os.MkdirAll(target, 0o755)
		}
		if !d.Type().IsRegular() {
			return nil
		}
		b, err := os.ReadFile(p)
		if err != nil {
			return err
		}
		return os.WriteFile(target, b, 0o644)
	})
	if err != nil {
		t.Fatal(err)
	}
}

// The binary in the image is static (the image has no libc or loader) and
// says the version it was built as.
func TestImageBinaryIsStaticAndVersioned(t *testing.T) {
	res, tarball := buildOnce(t)
	bin := extractBinary(t, tarball, t.TempDir())
	f, err := elf.Open(bin)
	if err != nil {
		t.Fatal(err)
	}
	defer f.Close()
	for _, p := range f.Progs {
		if p.Type == elf.PT_INTERP || p.Type == elf.PT_DYNAMIC {
			t.Errorf("the image's binary has a %s program header: not static", p.Type)
		}
	}
	if res.Meta.Arch != runtime.GOARCH {
		return // built for another machine: it cannot run here
	}
	out, err := exec.Command(bin, "version").CombinedOutput()
	if err != nil {
		t.Fatalf("vipd version: %v\n%s", err, out)
	}
	if got, want := strings.TrimSpace(string(out)), fmt.Sprintf("vipd %s", res.Meta.Version); got != want {
		t.Errorf("the image's vipd says %q, want %q", got, want)
	}
}
