package server

import (
	"context"
	"errors"
	"net/http"

	"github.com/perpetuo/perpetuo/gen/api"
	"github.com/perpetuo/perpetuo/internal/apierr"
)

// GetHealth implements api.StrictServerInterface: alive while the process runs.
func (s *Server) GetHealth(context.Context, api.GetHealthRequestObject) (api.GetHealthResponseObject, error) {
	return api.GetHealth200JSONResponse{Status: "ok"}, nil
}

// GetReadiness implements api.StrictServerInterface: ready while not draining
// and the database answers.
func (s *Server) GetReadiness(ctx context.Context, _ api.GetReadinessRequestObject) (api.GetReadinessResponseObject, error) {
	if err := s.ready(ctx); err != nil {
		msg := "Not ready: the database does not answer. Requests governed by a budget are refused (503 budget_unavailable); keys without a limit are served from cache for a bounded time."
		if errors.Is(err, ErrDraining) {
			msg = "Not ready: the gateway is shutting down."
		}
		return nil, apierr.New(http.StatusServiceUnavailable, apierr.Unavailable, "%s", msg).WithCause(err)
	}
	return api.GetReadiness200JSONResponse{Status: "ok"}, nil
}
