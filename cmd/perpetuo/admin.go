package main

import (
	"context"
	"errors"
	"flag"
	"fmt"
	"log/slog"
	"os"
	"time"

	"github.com/perpetuo/perpetuo/internal/app"
	"github.com/perpetuo/perpetuo/internal/config"
	"github.com/perpetuo/perpetuo/internal/secrets"
	"github.com/perpetuo/perpetuo/internal/store"
)

// withStore opens the configured database, migrated in direction, for a
// command, and closes it (stopping a managed database) afterwards.
func withStore(ctx context.Context, log *slog.Logger, direction string, fn func(cfg config.Config, st *store.Store) error) error {
	cfg, err := config.FromEnv(os.Environ())
	if err != nil {
		return err
	}
	pool, closeDB, err := app.OpenDatabase(ctx, cfg, log, direction)
	if err != nil {
		return err
	}
	defer closeDB()
	return fn(cfg, store.New(pool))
}

func keysCommand(ctx context.Context, args []string, log *slog.Logger) error {
	if len(args) == 0 || args[0] != "create" {
		return errors.New("usage: perpetuo keys create --workspace ws_... --role owner|admin|member|viewer [--member mem_...] [--name NAME]\n       perpetuo keys create --workspace-name NAME   (a new workspace and its owner key)")
	}
	fs := flag.NewFlagSet("keys create", flag.ContinueOnError)
	var r app.NewKeyRequest
	fs.StringVar(&r.WorkspaceID, "workspace", "", "workspace id (ws_...)")
	fs.StringVar(&r.WorkspaceName, "workspace-name", "", "create a new workspace with this name")
	fs.StringVar(&r.MemberID, "member", "", "existing member id (mem_...); default: a new member with --role")
	fs.StringVar(&r.MemberName, "member-name", "", "name of the new member")
	fs.StringVar(&r.Role, "role", "member", "role of the new member")
	fs.StringVar(&r.KeyName, "name", "cli", "key name")
	fs.BoolVar(&r.Operator, "operator", false, "make it an operator key: it may create workspaces and decide which use the operator's provider keys")
	if err := fs.Parse(args[1:]); err != nil {
		return err
	}
	return withStore(ctx, log, "up", func(_ config.Config, st *store.Store) error {
		k, plaintext, err := app.CreateKey(ctx, st, r, time.Now())
		if err != nil {
			return err
		}
		fmt.Printf("workspace: %s\nmember:    %s\nkey id:    %s\nAPI key (shown once, store it now): %s\n", k.WorkspaceID, k.MemberID, k.ID, plaintext)
		return nil
	})
}

func secretsCommand(ctx context.Context, args []string, log *slog.Logger) error {
	if len(args) == 1 && args[0] == "generate-key" {
		k, err := secrets.GenerateKey()
		if err != nil {
			return err
		}
		fmt.Println(k.Encode())
		return nil
	}
	if len(args) != 1 || args[0] != "rotate" {
		return errors.New("usage: perpetuo secrets generate-key | perpetuo secrets rotate\n  rotate: PERPETUO_MASTER_KEY=<new> PERPETUO_MASTER_KEY_OLD=<old> perpetuo secrets rotate")
	}
	return withStore(ctx, log, "up", func(cfg config.Config, st *store.Store) error {
		if cfg.MasterKey == "" {
			return errors.New("set PERPETUO_MASTER_KEY to the new master key (and PERPETUO_MASTER_KEY_OLD to the old one)")
		}
		ring, err := app.Keyring(cfg, log)
		if err != nil {
			return err
		}
		n, skipped, err := app.RotateSecrets(ctx, st, ring)
		if err != nil {
			return err
		}
		log.Info("credentials re-encrypted under the current master key", "rewritten", n, "changed_meanwhile_skipped", skipped)
		if skipped > 0 {
			return fmt.Errorf("%d credentials changed during rotation; run it again", skipped)
		}
		return nil
	})
}
