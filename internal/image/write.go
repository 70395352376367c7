package image

import (
	"archive/tar"
	"fmt"
	"io"
	"io/fs"
	"os"
	"path/filepath"
	"sort"
	"time"

	"github.com/google/go-containerregistry/pkg/name"
	v1 "github.com/google/go-containerregistry/pkg/v1"
	"github.com/google/go-containerregistry/pkg/v1/empty"
	"github.com/google/go-containerregistry/pkg/v1/layout"
	"github.com/google/go-containerregistry/pkg/v1/tarball"
)

// Format of the tarball Write produces.
type Format string

const (
	// OCI is an OCI image layout in a tar (an "oci-archive"): the manifest
	// is stored as built, so its digest is the one a registry shows after
	// `skopeo copy oci-archive:vipd.tar docker://REF` or `crane push`.
	OCI Format = "oci"
	// Docker is `docker save`'s format ("docker-archive"), for `docker
	// load`. It stores no manifest: a loader rebuilds one with Docker media
	// types, so a push from it gets another digest than OCI's.
	Docker Format = "docker"
)

// Annotations on the OCI layout's index entry: the full reference for
// podman/containerd (io.containerd.image.name) and the tag for OCI tools.
func refAnnotations(ref name.Tag) map[string]string {
	return map[string]string{
		"org.opencontainers.image.ref.name": ref.TagStr(),
		"io.containerd.image.name":          ref.Name(),
	}
}

// WriteFile writes img as a tarball of the given format to path.
func WriteFile(path string, img v1.Image, ref string, f Format) error {
	tag, err := name.NewTag(ref, name.StrictValidation)
	if err != nil {
		return fmt.Errorf("image reference %q: %w", ref, err)
	}
	out, err := os.Create(path)
	if err != nil {
		return err
	}
	switch f {
	case Docker:
		err = tarball.Write(tag, img, out)
	case OCI:
		err = writeOCIArchive(out, img, tag)
	default:
		err = fmt.Errorf("format %q: want %q or %q", f, OCI, Docker)
	}
	if cerr := out.Close(); err == nil {
		err = cerr
	}
	if err != nil {
		os.Remove(path)
	}
	return err
}

// writeOCIArchive writes the layout to a temp dir and tars it with sorted
// names, fixed modes, owners and times, so the tarball's bytes are as
// reproducible as the digest.
func writeOCIArchive(w io.Writer, img v1.Image, tag name.Tag) error {
	dir, err := os.MkdirTemp("", "vipd-oci-")
	if err != nil {
		return err
	}
	defer os.RemoveAll(dir)
	p, err := layout.Write(dir, empty.Index)
	if err != nil {
		return err
	}
	if err := p.AppendImage(img, layout.WithAnnotations(refAnnotations(tag))); err != nil {
		return err
	}
	var files []string
	err = filepath.WalkDir(dir, func(path string, d fs.DirEntry, err error) error {
		if err != nil || path == dir {
			return err
		}
		files = append(files, path)
		return nil
	})
	if err != nil {
		return err
	}
	sort.Strings(files)
	tw := tar.NewWriter(w)
	for _, path := range files {
		rel, err := filepath.Rel(dir, path)
		if err != nil {
			return err
		}
		st, err := os.Stat(path)
		if err != nil {
			return err
		}
		h := &tar.Header{Name: filepath.ToSlash(rel), ModTime: time.Unix(0, 0), Format: tar.FormatUSTAR}
		if st.IsDir() {
			h.Typeflag, h.Name, h.Mode = tar.TypeDir, h.Name+"/", 0o755
			if err := tw.WriteHeader(h); err != nil {
				return err
			}
			continue
		}
		h.Typeflag, h.Mode, h.Size = tar.TypeReg, 0o644, st.Size()
		if err := tw.WriteHeader(h); err != nil {
			return err
		}
		f, err := os.Open(path)
		if err != nil {
			return err
		}
		_, err = io.Copy(tw, f)
		f.Close()
		if err != nil {
			return err
		}
	}
	return tw.Close()
}

// ReadFile opens an image tarball written by WriteFile (either format). An
// OCI archive is unpacked into scratch, which must outlive the image.
func ReadFile(path, scratch string) (v1.Image, error) {
	f, err := os.Open(path)
	if err != nil {
		return nil, err
	}
	defer f.Close()
	tr := tar.NewReader(f)
	for {
		h, err := tr.Next()
		if err == io.EOF {
			break
		}
		if err != nil {
			return nil, fmt.Errorf("%s: %w", path, err)
		}
		if h.Name == "oci-layout" {
			return readOCIArchive(path, scratch)
		}
	}
	return tarball.ImageFromPath(path, nil)
}

// readOCIArchive unpacks an OCI archive into dir and opens its one image.
func readOCIArchive(path, dir string) (v1.Image, error) {
	f, err := os.Open(path)
	if err != nil {
		return nil, err
	}
	defer f.Close()
	tr := tar.NewReader(f)
	for {
		h, err := tr.Next()
		if err == io.EOF {
			break
		}
		if err != nil {
			return nil, err
		}
		if !filepath.IsLocal(h.Name) {
			return nil, fmt.Errorf("%s: entry %q leaves the archive", path, h.Name)
		}
		target := filepath.Join(dir, h.Name)
		switch h.Typeflag {
		case tar.TypeDir:
			if err := os.MkdirAll(target, 0o755); err != nil {
				return nil, err
			}
		case tar.TypeReg:
			if err := os.MkdirAll(filepath.Dir(target), 0o755); err != nil {
				return nil, err
			}
			out, err := os.Create(target)
			if err != nil {
				return nil, err
			}
			_, err = io.Copy(out, tr)
			if cerr := out.Close(); err == nil {
				err = cerr
			}
			if err != nil {
				return nil, err
			}
		}
	}
	idx, err := layout.ImageIndexFromPath(dir)
	if err != nil {
		return nil, err
	}
	m, err := idx.IndexManifest()
	if err != nil {
		return nil, err
	}
	if len(m.Manifests) != 1 {
		return nil, fmt.Errorf("%s: %d manifests in the index, want 1", path, len(m.Manifests))
	}
	return idx.Image(m.Manifests[0].Digest)
}
