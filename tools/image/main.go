// Command image builds vipd's container image without a Docker engine and
// writes it as a tarball (docs/image.md):
//
//	go run ./tools/image -o vipd.tar            # OCI archive, tagged $(cat deploy/IMAGE)
//	go run ./tools/image -format docker -o vipd.tar   # for docker load
//
// It prints the image digest, which is the same for every build of one
// commit with one Go version.
package main

import (
	"context"
	"flag"
	"fmt"
	"os"
	"os/signal"
	"time"

	"github.com/vipd/vipd/internal/image"
)

func main() {
	if err := run(); err != nil {
		fmt.Fprintln(os.Stderr, "image:", err)
		os.Exit(1)
	}
}

func run() error {
	var o image.Options
	out := flag.String("o", "vipd.tar", "output tarball")
	format := flag.String("format", string(image.OCI), "tarball format: oci (oci-archive) or docker (docker-archive)")
	flag.StringVar(&o.Ref, "ref", "", "image reference (default: the content of "+image.ImageFile+")")
	flag.StringVar(&o.Version, "version", "", "vipd version (default: the reference's tag)")
	flag.StringVar(&o.Revision, "revision", "", "source revision label (default: git rev-parse HEAD)")
	flag.StringVar(&o.Arch, "arch", "", "GOARCH (default: this machine's)")
	flag.Parse()
	if flag.NArg() > 0 {
		return fmt.Errorf("unexpected arguments %q", flag.Args())
	}
	o.Log = os.Stderr
	ctx, stop := signal.NotifyContext(context.Background(), os.Interrupt)
	defer stop()
	start := time.Now()
	res, err := image.Build(ctx, o)
	if err != nil {
		return err
	}
	if err := image.WriteFile(*out, res.Image, res.Meta.Ref, image.Format(*format)); err != nil {
		return err
	}
	st, err := os.Stat(*out)
	if err != nil {
		return err
	}
	fmt.Fprintf(os.Stderr, "%s: %s %s (version %s, revision %s, created %s), %d bytes, %s\n",
		*out, res.Meta.Ref, res.Meta.Arch, res.Meta.Version, res.Meta.Revision,
		res.Meta.Created.Format(time.RFC3339), st.Size(), time.Since(start).Round(time.Millisecond))
	fmt.Println(res.Digest)
	return nil
}
