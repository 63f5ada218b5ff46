package server

import (
	"errors"
	"net/http"
	"strings"
	"testing"

	"github.com/getkin/kin-openapi/routers"
	"github.com/stretchr/testify/require"

	"github.com/perpetuo/perpetuo/gen/api"
)

// TestStaticRoutesAnswerAsTheRouter: for every path of the spec without
// parameters, find answers what the router answers (the same operation),
// for each of its methods and for a method it lacks; a path with
// parameters is still matched by the router.
func TestStaticRoutesAnswerAsTheRouter(t *testing.T) {
	spec, err := api.GetSwagger()
	require.NoError(t, err)
	sr, err := newSpecRouter(spec)
	require.NoError(t, err)
	methods := []string{http.MethodGet, http.MethodPost, http.MethodPut, http.MethodPatch, http.MethodDelete}
	static := 0
	for path := range spec.Paths.Map() {
		if strings.Contains(path, "{") {
			continue
		}
		for _, method := range methods {
			req, err := http.NewRequest(method, "http://gw"+path, nil)
			require.NoError(t, err)
			want, _, wantErr := sr.router.FindRoute(req)
			got, params, gotErr := sr.find(req)
			if wantErr != nil {
				require.Error(t, gotErr, "%s %s", method, path)
				require.Equal(t, errors.Is(wantErr, routers.ErrMethodNotAllowed), errors.Is(gotErr, routers.ErrMethodNotAllowed), "%s %s", method, path)
				continue
			}
			require.NoError(t, gotErr, "%s %s", method, path)
			require.Same(t, want.Operation, got.Operation, "%s %s", method, path)
			require.Equal(t, want.Path, got.Path)
			require.Empty(t, params)
			static++
		}
	}
	require.Equal(t, static, func() (n int) {
		for _, ms := range sr.static {
			n += len(ms)
		}
		return n
	}(), "every static operation is in the table")
	require.NotNil(t, sr.static["/v1/chat/completions"][http.MethodPost])

	req, err := http.NewRequest(http.MethodGet, "http://gw/v1/workspaces/ws_x", nil)
	require.NoError(t, err)
	route, params, err := sr.find(req)
	require.NoError(t, err)
	require.Equal(t, "/v1/workspaces/{workspaceId}", route.Path)
	require.Equal(t, "ws_x", params["workspaceId"])
}
