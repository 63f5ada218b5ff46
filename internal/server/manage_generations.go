package server

import (
	"context"
	"encoding/base64"
	"net/http"
	"strconv"
	"strings"
	"time"

	"github.com/perpetuo/perpetuo/gen/api"
	"github.com/perpetuo/perpetuo/internal/access"
	"github.com/perpetuo/perpetuo/internal/apierr"
	"github.com/perpetuo/perpetuo/internal/store"
)

const defaultGenerationPage = 50

// ListGenerations implements api.StrictServerInterface.
func (s *Server) ListGenerations(ctx context.Context, req api.ListGenerationsRequestObject) (api.ListGenerationsResponseObject, error) {
	k, err := inWorkspace(ctx, req.WorkspaceId)
	if err != nil {
		return nil, err
	}
	p := req.Params
	f := store.GenerationFilter{WorkspaceID: req.WorkspaceId, Model: deref(p.Model), Provider: deref(p.Provider),
		KeyID: deref(p.KeyId), Status: deref(p.Status), From: deref(p.From), To: deref(p.To),
		Limit: defaultGenerationPage}
	if !access.Can(k.Role, access.ReadAllGenerations) {
		f.MemberID = k.MemberID
	}
	if p.Limit != nil {
		f.Limit = *p.Limit
	}
	if p.Cursor != nil {
		if f.AfterCreated, f.AfterID, err = decodeCursor(*p.Cursor); err != nil {
			return nil, err
		}
	}
	want := f.Limit
	f.Limit++ // one more tells whether another page follows
	gs, err := s.store.Generations(ctx, f)
	if err != nil {
		return nil, err
	}
	out := api.ListGenerations200JSONResponse{Data: make([]api.Generation, 0, min(len(gs), want))}
	for i, g := range gs {
		if i == want {
			last := gs[want-1]
			c := encodeCursor(last.CreatedAt, last.ID)
			out.NextCursor = &c
			break
		}
		out.Data = append(out.Data, generationOf(g))
	}
	return out, nil
}

// A cursor is the (created_at, id) of a page's last row: opaque to
// clients, checked when it comes back.
func encodeCursor(at time.Time, id string) string {
	return base64.RawURLEncoding.EncodeToString([]byte(strconv.FormatInt(at.UnixNano(), 10) + "." + id))
}

func decodeCursor(c string) (time.Time, string, error) {
	bad := apierr.New(http.StatusBadRequest, apierr.InvalidRequest,
		"Invalid cursor parameter: pass the next_cursor of the previous page unchanged.").With("field", "cursor")
	b, err := base64.RawURLEncoding.DecodeString(c)
	if err != nil {
		return time.Time{}, "", bad
	}
	ns, id, ok := strings.Cut(string(b), ".")
	n, err := strconv.ParseInt(ns, 10, 64)
	if !ok || err != nil || !strings.HasPrefix(id, "gen-") || len(id) > 80 {
		return time.Time{}, "", bad
	}
	return time.Unix(0, n).UTC(), id, nil
}
