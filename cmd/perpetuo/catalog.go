package main

import (
	"context"
	"encoding/json"
	"errors"
	"flag"
	"fmt"
	"io"
	"os"
	"path/filepath"
	"strings"
	"time"

	"github.com/perpetuo/perpetuo/internal/catalog"
)

const catalogUsage = `usage: perpetuo catalog sync --from URL|DIR [--out FILE] [--models a/b,c/d] [--base-urls FILE] [--timeout 60s]

Imports OpenRouter's /models, /models/{id}/endpoints and /endpoints/zdr
documents (from an http(s) base URL such as https://openrouter.ai/api/v1, or
a directory holding models.json, endpoints/<author>/<slug>.json and zdr.json)
and writes a catalog for PERPETUO_CATALOG. OPENROUTER_API_KEY, when set, is
sent to the URL. See docs/catalog.md, "Syncing from OpenRouter".
`

// catalogCommand runs "perpetuo catalog ...": the catalog goes to stdout (or
// --out), the report to stderr.
func catalogCommand(ctx context.Context, args []string, stdout, stderr io.Writer) error {
	if len(args) == 0 || args[0] != "sync" {
		return errors.New(strings.TrimSpace(catalogUsage))
	}
	fs := flag.NewFlagSet("catalog sync", flag.ContinueOnError)
	fs.SetOutput(stderr)
	fs.Usage = func() {
		fmt.Fprint(stderr, catalogUsage, "\nflags:\n")
		fs.PrintDefaults()
	}
	from := fs.String("from", "", "OpenRouter API base URL (https://openrouter.ai/api/v1) or a directory of its documents (required)")
	out := fs.String("out", "", "catalog file to write (default: standard output)")
	models := fs.String("models", "", "comma-separated model ids to import (default: every model, one request per model)")
	baseURLsFile := fs.String("base-urls", "", `JSON file {"provider-slug": "https://.../v1", ...} overriding the built-in provider base URLs`)
	timeout := fs.Duration("timeout", 60*time.Second, "timeout of each HTTP request")
	if err := fs.Parse(args[1:]); err != nil {
		if errors.Is(err, flag.ErrHelp) {
			return nil
		}
		return err
	}
	if fs.NArg() > 0 {
		return fmt.Errorf("catalog sync: unexpected argument %q", fs.Arg(0))
	}
	if *from == "" {
		return errors.New("catalog sync: --from is required\n" + strings.TrimSpace(catalogUsage))
	}

	opts := catalog.SyncOptions{From: *from, APIKey: os.Getenv("OPENROUTER_API_KEY")}
	for _, id := range strings.Split(*models, ",") {
		if id = strings.TrimSpace(id); id != "" {
			opts.Models = append(opts.Models, id)
		}
	}
	if *baseURLsFile != "" {
		b, err := os.ReadFile(*baseURLsFile)
		if err != nil {
			return fmt.Errorf("--base-urls: %w", err)
		}
		if err := json.Unmarshal(b, &opts.BaseURLs); err != nil {
			return fmt.Errorf("--base-urls %s: want a JSON object of provider slug to base URL: %w", *baseURLsFile, err)
		}
	}
	opts.Timeout = *timeout

	res, err := catalog.Sync(ctx, opts)
	if res != nil {
		reportSync(stderr, res)
	}
	if err != nil {
		return fmt.Errorf("catalog sync: %w", err)
	}
	if *out == "" || *out == "-" {
		_, err := stdout.Write(res.JSON)
		return err
	}
	if err := writeCatalogFile(*out, res.JSON); err != nil {
		return fmt.Errorf("catalog sync: %w", err)
	}
	// Read back what was written, as the server will.
	if _, err := catalog.Load(*out); err != nil {
		return fmt.Errorf("catalog sync: written file does not load: %w", err)
	}
	fmt.Fprintf(stderr, "wrote %s: load it with PERPETUO_CATALOG=%s\n", *out, *out)
	return nil
}

func reportSync(w io.Writer, res *catalog.SyncResult) {
	for _, s := range res.SkippedEndpoints {
		fmt.Fprintln(w, "skipped endpoint:", s)
	}
	for _, s := range res.SkippedModels {
		fmt.Fprintln(w, "skipped model:", s)
	}
	for _, n := range res.Notes {
		fmt.Fprintln(w, "note:", n)
	}
	fmt.Fprintf(w, "imported %d models, %d endpoints, %d providers; skipped %d endpoints and %d models\n",
		res.Models, res.Endpoints, res.Providers, len(res.SkippedEndpoints), len(res.SkippedModels))
}

// writeCatalogFile replaces path with b, through a temporary file in the same
// directory so a failed write leaves the old file in place.
func writeCatalogFile(path string, b []byte) error {
	tmp, err := os.CreateTemp(filepath.Dir(path), ".catalog-*.json")
	if err != nil {
		return err
	}
	defer os.Remove(tmp.Name())
	if _, err := tmp.Write(b); err != nil {
		_ = tmp.Close()
		return err
	}
	if err := tmp.Chmod(0o644); err != nil {
		_ = tmp.Close()
		return err
	}
	if err := tmp.Close(); err != nil {
		return err
	}
	return os.Rename(tmp.Name(), path)
}
