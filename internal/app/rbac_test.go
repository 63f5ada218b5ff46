package app

import (
	"encoding/json"
	"fmt"
	"net/http"
	"slices"
	"strings"
	"testing"

	"github.com/stretchr/testify/require"
)

// The RBAC matrix: every role × every management route, against the real
// server and database, plus workspace isolation (another workspace's ids
// answer 404 whatever the caller's role, exactly as ids that do not exist).

const (
	rOwner  = "owner"
	rAdmin  = "admin"
	rMember = "member"
	rViewer = "viewer"
)

var rbacRoles = []string{rOwner, rAdmin, rMember, rViewer}

// rbacCredSecret is the provider key stored in every test credential: no
// response body may ever contain it. rbacCredProvider is a provider of the test
// catalog (it has no "openai").
const (
	rbacCredSecret   = "sk-test-0123456789abcdef"
	rbacCredProvider = "steady"
	rbacCredBody     = `{"provider":"` + rbacCredProvider + `","api_key":"` + rbacCredSecret + `"}`
)

// Ids that exist nowhere, to compare with another workspace's real ids.
const (
	rbacFakeWS     = "ws_01J0000000000000000000000Z"
	rbacFakeMember = "mem_01J0000000000000000000000Z"
	rbacFakeKey    = "key_01J0000000000000000000000Z"
	rbacFakeCred   = "cred_01J0000000000000000000000Z"
)

// rbacOutcome is what a request must answer.
type rbacOutcome struct {
	status int
	typ    string   // error type for refusals
	need   []string // required_roles of a permission_denied
}

func rbacAllow(status int) rbacOutcome { return rbacOutcome{status: status} }

func rbacDeny(need ...string) rbacOutcome {
	return rbacOutcome{status: http.StatusForbidden, typ: "permission_denied", need: need}
}

var (
	rbacNotFound = rbacOutcome{status: http.StatusNotFound, typ: "not_found"}
	rbacConflict = rbacOutcome{status: http.StatusConflict, typ: "conflict"}
	rbacOK200    = rbacAllow(http.StatusOK)
	rbacOK201    = rbacAllow(http.StatusCreated)
	rbacOK204    = rbacAllow(http.StatusNoContent)
)

// rbacEvery gives each role the same outcome.
func rbacEvery(o rbacOutcome) map[string]rbacOutcome {
	return map[string]rbacOutcome{rOwner: o, rAdmin: o, rMember: o, rViewer: o}
}

// rbacResp is one answer: status, decoded JSON (nil for 204) and raw body.
type rbacResp struct {
	status int
	doc    map[string]any
	raw    []byte
}

func (r rbacResp) data() map[string]any {
	d, _ := r.doc["data"].(map[string]any)
	return d
}

func (r rbacResp) list() []map[string]any {
	items, _ := r.doc["data"].([]any)
	out := make([]map[string]any, len(items))
	for i, it := range items {
		out[i], _ = it.(map[string]any)
	}
	return out
}

// rbacWS is a workspace with one member (and key) per role.
type rbacWS struct {
	id      string
	keys    map[string]string // role → plaintext key
	keyIDs  map[string]string // role → key id
	members map[string]string // role → member id
}

// rbacFix is the shared fixture.
type rbacFix struct {
	e       *env
	main    rbacWS
	target  string // a plain member of main: "another member"
	tKey    string // a key of target
	cred    string // a credential of main
	other   rbacWS // a second workspace (only its owner key is used)
	oMember string // a member of other
	oKey    string // that member's key id
	oCred   string // a credential of other
	secrets []string
}

// call sends one request the way every route is hit, checks the error
// envelope of refusals and that no secret ever comes back.
func (f *rbacFix) call(t *testing.T, method, path, key, body string) rbacResp {
	t.Helper()
	status, _, raw := send(t, f.e.srv.URL, method, path, key, body)
	r := rbacResp{status: status, raw: raw}
	if len(raw) > 0 {
		require.NoError(t, json.Unmarshal(raw, &r.doc), "%s %s: body %s", method, path, raw)
	}
	if status == http.StatusNoContent {
		require.Empty(t, raw, "204 has no body")
	}
	if status >= 400 {
		er, ok := r.doc["error"].(map[string]any)
		require.True(t, ok, "%s %s: no error envelope: %s", method, path, raw)
		requireEnvelope(t, r.doc, status, fmt.Sprint(er["type"]))
	}
	for _, s := range append([]string{rbacCredSecret, "0123456789abcdef"}, f.secrets...) {
		require.NotContains(t, string(raw), s, "%s %s leaked a secret", method, path)
	}
	return r
}

// must sends a request with key and requires the status.
func (f *rbacFix) must(t *testing.T, status int, method, path, key, body string) rbacResp {
	t.Helper()
	r := f.call(t, method, path, key, body)
	require.Equal(t, status, r.status, "%s %s: %s", method, path, r.raw)
	return r
}

// rbacRequire checks r against want, including the refusal's details.
func rbacRequire(t *testing.T, want rbacOutcome, r rbacResp, role string) {
	t.Helper()
	require.Equal(t, want.status, r.status, "body: %s", r.raw)
	if want.typ == "" {
		return
	}
	er := requireEnvelope(t, r.doc, want.status, want.typ)
	if want.typ != "permission_denied" {
		return
	}
	md := er["metadata"].(map[string]any)
	var got []string
	for _, v := range md["required_roles"].([]any) {
		got = append(got, v.(string))
	}
	require.Equal(t, want.need, got, "required_roles")
	require.Equal(t, role, md["role"])
	msg := er["message"].(string)
	require.Contains(t, msg, "you need the role "+strings.Join(want.need, " or "))
	require.Contains(t, msg, "this key acts as "+role)
}

func rbacPath(ws string, rest ...string) string {
	return "/v1/workspaces/" + strings.Join(append([]string{ws}, rest...), "/")
}

// newMember adds a member to ws with the owner key of ws.
func (f *rbacFix) newMember(t *testing.T, ws, ownerKey, role string) string {
	t.Helper()
	body := fmt.Sprintf(`{"name":"%s-%s","role":"%s"}`, role, strings.ToLower(t.Name()[len(t.Name())-6:]), role)
	r := f.must(t, http.StatusCreated, http.MethodPost, rbacPath(ws, "members"), ownerKey, body)
	require.Equal(t, role, r.data()["role"])
	return r.data()["id"].(string)
}

// newKey creates a key for member in ws, returning its id and plaintext.
func (f *rbacFix) newKey(t *testing.T, ws, ownerKey, member string) (string, string) {
	t.Helper()
	r := f.must(t, http.StatusCreated, http.MethodPost, rbacPath(ws, "keys"), ownerKey,
		fmt.Sprintf(`{"name":"k","member_id":"%s"}`, member))
	d := r.data()
	require.Equal(t, member, d["member_id"])
	require.True(t, strings.HasPrefix(d["key"].(string), "pk_"))
	return d["id"].(string), d["key"].(string)
}

// newCred adds a credential to ws.
func (f *rbacFix) newCred(t *testing.T, ws, ownerKey string) string {
	t.Helper()
	return f.must(t, http.StatusCreated, http.MethodPost, rbacPath(ws, "credentials"), ownerKey, rbacCredBody).data()["id"].(string)
}

// newWorkspace creates a workspace (with the main owner key) and returns it
// with its owner; withRoles also gives it an admin, a member and a viewer.
func (f *rbacFix) newWorkspace(t *testing.T, name string, withRoles bool) rbacWS {
	t.Helper()
	r := f.must(t, http.StatusCreated, http.MethodPost, "/v1/workspaces", f.main.keys[rOwner],
		fmt.Sprintf(`{"name":"%s","owner":{"name":"o-%s"}}`, name, name))
	d := r.data()
	w := rbacWS{
		id:      d["workspace"].(map[string]any)["id"].(string),
		keys:    map[string]string{rOwner: d["key"].(map[string]any)["key"].(string)},
		keyIDs:  map[string]string{rOwner: d["key"].(map[string]any)["id"].(string)},
		members: map[string]string{rOwner: d["owner"].(map[string]any)["id"].(string)},
	}
	require.Equal(t, "owner", d["owner"].(map[string]any)["role"])
	require.Equal(t, w.members[rOwner], d["key"].(map[string]any)["member_id"])
	if withRoles {
		for _, role := range []string{rAdmin, rMember, rViewer} {
			w.members[role] = f.newMember(t, w.id, w.keys[rOwner], role)
			w.keyIDs[role], w.keys[role] = f.newKey(t, w.id, w.keys[rOwner], w.members[role])
		}
	}
	return w
}

func newRBACFix(t *testing.T) *rbacFix {
	e := setup(t, nil)
	f := &rbacFix{e: e, main: rbacWS{id: e.ws,
		keys: map[string]string{rOwner: e.key}, keyIDs: map[string]string{}, members: map[string]string{}}}
	// The bootstrap owner's member and key ids.
	r := f.must(t, http.StatusOK, http.MethodGet, rbacPath(e.ws, "keys"), e.key, "")
	require.Len(t, r.list(), 1)
	f.main.keyIDs[rOwner] = r.list()[0]["id"].(string)
	f.main.members[rOwner] = r.list()[0]["member_id"].(string)
	for _, role := range []string{rAdmin, rMember, rViewer} {
		f.main.members[role] = f.newMember(t, e.ws, e.key, role)
		f.main.keyIDs[role], f.main.keys[role] = f.newKey(t, e.ws, e.key, f.main.members[role])
	}
	f.target = f.newMember(t, e.ws, e.key, rMember)
	f.tKey, _ = f.newKey(t, e.ws, e.key, f.target)
	f.cred = f.newCred(t, e.ws, e.key)

	// The second workspace, created through the API.
	r = f.must(t, http.StatusCreated, http.MethodPost, "/v1/workspaces", e.key, `{"name":"other","owner":{"name":"o2"}}`)
	d := r.data()
	f.other = rbacWS{
		id:      d["workspace"].(map[string]any)["id"].(string),
		keys:    map[string]string{rOwner: d["key"].(map[string]any)["key"].(string)},
		keyIDs:  map[string]string{rOwner: d["key"].(map[string]any)["id"].(string)},
		members: map[string]string{rOwner: d["owner"].(map[string]any)["id"].(string)},
	}
	require.NotEqual(t, e.ws, f.other.id)
	f.oMember = f.newMember(t, f.other.id, f.other.keys[rOwner], rMember)
	f.oKey, _ = f.newKey(t, f.other.id, f.other.keys[rOwner], f.oMember)
	f.oCred = f.newCred(t, f.other.id, f.other.keys[rOwner])

	// From now on no body may contain a fixture key's plaintext.
	for _, k := range f.main.keys {
		f.secrets = append(f.secrets, k)
	}
	f.secrets = append(f.secrets, f.other.keys[rOwner])
	return f
}

// rbacReq is one request; key empty means the caller role's key in main.
type rbacReq struct{ method, path, body, key string }

// rbacRoute is one management action with its expected outcome per role.
type rbacRoute struct {
	name string
	// req builds the request the role makes, creating fresh targets (with
	// the owner key) for anything the request changes or deletes.
	req  func(t *testing.T, role string) rbacReq
	want map[string]rbacOutcome
	// check runs after an allowed request.
	check func(t *testing.T, role string, r rbacResp)
}

func TestRBACMatrix(t *testing.T) {
	t.Parallel()
	f := newRBACFix(t)
	m := f.main
	ownerKey := m.keys[rOwner]
	fixed := func(method, path, body string) func(*testing.T, string) rbacReq {
		return func(*testing.T, string) rbacReq { return rbacReq{method: method, path: path, body: body} }
	}
	ownerAdmin := func(ok rbacOutcome) map[string]rbacOutcome {
		return map[string]rbacOutcome{rOwner: ok, rAdmin: ok, rMember: rbacDeny(rOwner, rAdmin), rViewer: rbacDeny(rOwner, rAdmin)}
	}
	readers := func(ok rbacOutcome) map[string]rbacOutcome { // owner, admin, viewer
		return map[string]rbacOutcome{rOwner: ok, rAdmin: ok, rMember: rbacDeny(rOwner, rAdmin, rViewer), rViewer: ok}
	}
	ownKeys := func(ok rbacOutcome) map[string]rbacOutcome { // owner, admin, member
		return map[string]rbacOutcome{rOwner: ok, rAdmin: ok, rMember: ok, rViewer: rbacDeny(rOwner, rAdmin, rMember)}
	}
	ownerOnly := func(ok rbacOutcome) map[string]rbacOutcome {
		return map[string]rbacOutcome{rOwner: ok, rAdmin: rbacDeny(rOwner), rMember: rbacDeny(rOwner, rAdmin), rViewer: rbacDeny(rOwner, rAdmin)}
	}
	freshMember := func(t *testing.T, role string) string { return f.newMember(t, m.id, ownerKey, role) }
	freshKey := func(t *testing.T, member string) string { id, _ := f.newKey(t, m.id, ownerKey, member); return id }
	wantData := func(field string, value any) func(*testing.T, string, rbacResp) {
		return func(t *testing.T, _ string, r rbacResp) { require.Equal(t, value, r.data()[field], "%s", r.raw) }
	}
	noSecretField := func(t *testing.T, items ...map[string]any) {
		for _, it := range items {
			require.NotContains(t, it, "key", "a stored key never comes back in plaintext")
			require.NotContains(t, it, "api_key")
			require.NotContains(t, it, "secret")
		}
	}

	routes := []rbacRoute{
		// Workspaces.
		{name: "workspaces/list", req: fixed("GET", "/v1/workspaces", ""), want: rbacEvery(rbacOK200),
			check: func(t *testing.T, _ string, r rbacResp) {
				require.Len(t, r.list(), 1, "a key sees only its own workspace")
				require.Equal(t, m.id, r.list()[0]["id"])
			}},
		{name: "workspaces/get", req: fixed("GET", rbacPath(m.id), ""), want: rbacEvery(rbacOK200), check: wantData("id", m.id)},
		{name: "workspaces/patch", req: func(_ *testing.T, role string) rbacReq {
			return rbacReq{method: "PATCH", path: rbacPath(m.id), body: `{"name":"renamed by ` + role + `"}`}
		}, want: ownerAdmin(rbacOK200), check: func(t *testing.T, role string, r rbacResp) {
			require.Equal(t, "renamed by "+role, r.data()["name"])
		}},
		{name: "workspaces/delete", req: func(t *testing.T, role string) rbacReq {
			// Each role tries to delete a fresh workspace it belongs to.
			w := f.newWorkspace(t, "doomed-"+role, true)
			return rbacReq{method: "DELETE", path: rbacPath(w.id), key: w.keys[role]}
		}, want: map[string]rbacOutcome{rOwner: rbacOK204, rAdmin: rbacDeny(rOwner), rMember: rbacDeny(rOwner), rViewer: rbacDeny(rOwner)}},
		{name: "workspaces/create", req: func(_ *testing.T, role string) rbacReq {
			return rbacReq{method: "POST", path: "/v1/workspaces", body: `{"name":"made by ` + role + `","owner":{"name":"o"}}`}
			// Only the operator's key (the main workspace's bootstrap owner key)
			// creates workspaces: owners are not operators.
		}, want: map[string]rbacOutcome{rOwner: rbacOK201, rAdmin: rbacDeny("operator"), rMember: rbacDeny("operator"), rViewer: rbacDeny("operator")}, check: func(t *testing.T, role string, r rbacResp) {
			d := r.data()
			w := d["workspace"].(map[string]any)
			require.Equal(t, false, w["use_operator_credentials"], "off unless the operator says so")
			require.NotEqual(t, m.id, w["id"])
			require.Equal(t, "owner", d["owner"].(map[string]any)["role"])
			newKey := d["key"].(map[string]any)["key"].(string)
			require.True(t, strings.HasPrefix(newKey, "pk_"))
			// The creator gets no access to the new workspace; its owner key does.
			rbacRequire(t, rbacNotFound, f.call(t, "GET", rbacPath(w["id"].(string)), m.keys[role], ""), role)
			f.must(t, http.StatusOK, "GET", rbacPath(w["id"].(string), "members"), newKey, "")
		}},

		// Members.
		{name: "members/list", req: fixed("GET", rbacPath(m.id, "members"), ""), want: rbacEvery(rbacOK200),
			check: func(t *testing.T, _ string, r rbacResp) {
				ids := map[any]bool{}
				for _, it := range r.list() {
					require.Equal(t, m.id, it["workspace_id"])
					ids[it["id"]] = true
				}
				for _, id := range m.members {
					require.True(t, ids[id], "member %s listed", id)
				}
				require.False(t, ids[f.oMember], "another workspace's member is never listed")
			}},
		{name: "members/get", req: fixed("GET", rbacPath(m.id, "members", m.members[rAdmin]), ""), want: rbacEvery(rbacOK200),
			check: wantData("role", "admin")},
		{name: "members/create", req: fixed("POST", rbacPath(m.id, "members"), `{"name":"new","role":"member"}`),
			want: ownerAdmin(rbacOK201), check: wantData("role", "member")},
		{name: "members/create owner", req: fixed("POST", rbacPath(m.id, "members"), `{"name":"new owner","role":"owner"}`),
			want: ownerOnly(rbacOK201), check: wantData("role", "owner")},
		{name: "members/rename", req: func(t *testing.T, _ string) rbacReq {
			return rbacReq{method: "PATCH", path: rbacPath(m.id, "members", freshMember(t, rMember)), body: `{"name":"renamed"}`}
		}, want: ownerAdmin(rbacOK200), check: wantData("name", "renamed")},
		{name: "members/rename an owner", req: func(t *testing.T, _ string) rbacReq {
			return rbacReq{method: "PATCH", path: rbacPath(m.id, "members", freshMember(t, rOwner)), body: `{"name":"renamed owner"}`}
		}, // owners are managed by owners only, details included
			want:  map[string]rbacOutcome{rOwner: rbacOK200, rAdmin: rbacDeny(rOwner), rMember: rbacDeny(rOwner, rAdmin), rViewer: rbacDeny(rOwner, rAdmin)},
			check: wantData("role", "owner")},
		{name: "members/change role member to viewer", req: func(t *testing.T, _ string) rbacReq {
			return rbacReq{method: "PATCH", path: rbacPath(m.id, "members", freshMember(t, rMember)), body: `{"role":"viewer"}`}
		}, want: ownerAdmin(rbacOK200), check: wantData("role", "viewer")},
		{name: "members/promote to owner", req: func(t *testing.T, _ string) rbacReq {
			return rbacReq{method: "PATCH", path: rbacPath(m.id, "members", freshMember(t, rAdmin)), body: `{"role":"owner"}`}
		}, want: ownerOnly(rbacOK200), check: wantData("role", "owner")},
		{name: "members/demote an owner", req: func(t *testing.T, _ string) rbacReq {
			return rbacReq{method: "PATCH", path: rbacPath(m.id, "members", freshMember(t, rOwner)), body: `{"role":"admin"}`}
		}, want: ownerOnly(rbacOK200), check: wantData("role", "admin")},
		{name: "members/promote self to owner", req: func(_ *testing.T, role string) rbacReq {
			return rbacReq{method: "PATCH", path: rbacPath(m.id, "members", m.members[role]), body: `{"role":"` + role + `"}`}
		}, want: ownerAdmin(rbacOK200)}, // same role: a no-op, not an owner change
		{name: "members/delete", req: func(t *testing.T, _ string) rbacReq {
			return rbacReq{method: "DELETE", path: rbacPath(m.id, "members", freshMember(t, rViewer))}
		}, want: ownerAdmin(rbacOK204)},
		{name: "members/delete an owner", req: func(t *testing.T, _ string) rbacReq {
			return rbacReq{method: "DELETE", path: rbacPath(m.id, "members", freshMember(t, rOwner))}
		}, want: ownerOnly(rbacOK204)},

		// Keys.
		{name: "keys/list", req: fixed("GET", rbacPath(m.id, "keys"), ""), want: rbacEvery(rbacOK200),
			check: func(t *testing.T, role string, r rbacResp) {
				ids := map[any]bool{}
				for _, it := range r.list() {
					noSecretField(t, it)
					require.Equal(t, m.id, it["workspace_id"])
					if role == rMember {
						require.Equal(t, m.members[rMember], it["member_id"], "a member lists only its own keys")
					}
					ids[it["id"]] = true
				}
				require.True(t, ids[m.keyIDs[role]], "own key listed")
				require.Equal(t, role != rMember, ids[m.keyIDs[rOwner]], "owner's key listed")
				require.Equal(t, role != rMember, ids[f.tKey], "another member's key listed")
				require.False(t, ids[f.oKey], "another workspace's key is never listed")
			}},
		{name: "keys/get own", req: func(_ *testing.T, role string) rbacReq {
			return rbacReq{method: "GET", path: rbacPath(m.id, "keys", m.keyIDs[role])}
		}, want: rbacEvery(rbacOK200), check: func(t *testing.T, role string, r rbacResp) {
			require.Equal(t, m.members[role], r.data()["member_id"])
			noSecretField(t, r.data())
		}},
		{name: "keys/get another member's", req: fixed("GET", rbacPath(m.id, "keys", f.tKey), ""),
			want: readers(rbacOK200), check: wantData("member_id", f.target)},
		{name: "keys/create for self", req: fixed("POST", rbacPath(m.id, "keys"), `{"name":"mine"}`),
			want: ownKeys(rbacOK201), check: func(t *testing.T, role string, r rbacResp) {
				require.Equal(t, m.members[role], r.data()["member_id"])
				require.True(t, strings.HasPrefix(r.data()["key"].(string), "pk_"))
			}},
		{name: "keys/create for self by id", req: func(_ *testing.T, role string) rbacReq {
			return rbacReq{method: "POST", path: rbacPath(m.id, "keys"), body: `{"name":"mine","member_id":"` + m.members[role] + `"}`}
		}, want: ownKeys(rbacOK201), check: func(t *testing.T, role string, r rbacResp) {
			require.Equal(t, m.members[role], r.data()["member_id"])
		}},
		{name: "keys/create for self with policy fields", req: fixed("POST", rbacPath(m.id, "keys"), `{"name":"mine","limit":1000,"require_zdr":false,"include_byok_in_limit":false}`),
			// The same rule as on PATCH: a member cannot escape its key's
			// limit by minting a new key without one.
			want:  map[string]rbacOutcome{rOwner: rbacOK201, rAdmin: rbacOK201, rMember: rbacDeny(rOwner, rAdmin), rViewer: rbacDeny(rOwner, rAdmin, rMember)},
			check: wantData("limit", float64(1000))},
		{name: "keys/create for self with an expiry", req: fixed("POST", rbacPath(m.id, "keys"), `{"name":"mine","expires_at":"2999-01-01T00:00:00Z"}`),
			want: map[string]rbacOutcome{rOwner: rbacOK201, rAdmin: rbacOK201, rMember: rbacDeny(rOwner, rAdmin), rViewer: rbacDeny(rOwner, rAdmin, rMember)}},
		{name: "keys/create for another member", req: fixed("POST", rbacPath(m.id, "keys"), `{"name":"theirs","member_id":"`+f.target+`"}`),
			want:  map[string]rbacOutcome{rOwner: rbacOK201, rAdmin: rbacOK201, rMember: rbacDeny(rOwner, rAdmin), rViewer: rbacDeny(rOwner, rAdmin, rMember)},
			check: wantData("member_id", f.target)},
		{name: "keys/create for an owner", req: fixed("POST", rbacPath(m.id, "keys"), `{"name":"owner's","member_id":"`+m.members[rOwner]+`"}`),
			// A key acts with its member's role: an admin holding an owner's
			// key could delete the workspace and manage owners.
			want: map[string]rbacOutcome{rOwner: rbacOK201, rAdmin: rbacDeny(rOwner), rMember: rbacDeny(rOwner, rAdmin), rViewer: rbacDeny(rOwner, rAdmin, rMember)}},
		{name: "keys/revoke an owner's key", req: func(t *testing.T, _ string) rbacReq {
			return rbacReq{method: "DELETE", path: rbacPath(m.id, "keys", freshKey(t, m.members[rOwner]))}
		}, want: map[string]rbacOutcome{rOwner: rbacOK204, rAdmin: rbacDeny(rOwner), rMember: rbacDeny(rOwner, rAdmin), rViewer: rbacDeny(rOwner, rAdmin)}},
		{name: "keys/re-enable own disabled key", req: func(t *testing.T, role string) rbacReq {
			id := freshKey(t, m.members[role])
			f.must(t, http.StatusOK, "PATCH", rbacPath(m.id, "keys", id), ownerKey, `{"disabled":true}`)
			return rbacReq{method: "PATCH", path: rbacPath(m.id, "keys", id), body: `{"disabled":false}`}
		}, // an admin's disabling must hold against the key's member
			want: map[string]rbacOutcome{rOwner: rbacOK200, rAdmin: rbacOK200, rMember: rbacDeny(rOwner, rAdmin), rViewer: rbacDeny(rOwner, rAdmin, rMember)}},
		{name: "keys/rename own", req: func(t *testing.T, role string) rbacReq {
			return rbacReq{method: "PATCH", path: rbacPath(m.id, "keys", freshKey(t, m.members[role])), body: `{"name":"renamed"}`}
		}, want: ownKeys(rbacOK200), check: wantData("name", "renamed")},
		{name: "keys/disable own", req: func(t *testing.T, role string) rbacReq {
			return rbacReq{method: "PATCH", path: rbacPath(m.id, "keys", freshKey(t, m.members[role])), body: `{"disabled":true}`}
		}, want: ownKeys(rbacOK200), check: wantData("disabled", true)},
		{name: "keys/set limit on own", req: func(t *testing.T, role string) rbacReq {
			return rbacReq{method: "PATCH", path: rbacPath(m.id, "keys", freshKey(t, m.members[role])), body: `{"limit":5}`}
		}, want: map[string]rbacOutcome{rOwner: rbacOK200, rAdmin: rbacOK200, rMember: rbacDeny(rOwner, rAdmin), rViewer: rbacDeny(rOwner, rAdmin, rMember)},
			check: wantData("limit", float64(5))},
		{name: "keys/rename another member's", req: func(t *testing.T, _ string) rbacReq {
			return rbacReq{method: "PATCH", path: rbacPath(m.id, "keys", freshKey(t, f.target)), body: `{"name":"renamed"}`}
		}, want: ownerAdmin(rbacOK200), check: wantData("name", "renamed")},
		{name: "keys/set limit on another member's", req: func(t *testing.T, _ string) rbacReq {
			return rbacReq{method: "PATCH", path: rbacPath(m.id, "keys", freshKey(t, f.target)), body: `{"limit":2.5,"limit_reset":"daily"}`}
		}, want: ownerAdmin(rbacOK200), check: wantData("limit_reset", "daily")},
		{name: "keys/delete own", req: func(t *testing.T, role string) rbacReq {
			return rbacReq{method: "DELETE", path: rbacPath(m.id, "keys", freshKey(t, m.members[role]))}
		}, want: ownKeys(rbacOK204)},
		{name: "keys/delete another member's", req: func(t *testing.T, _ string) rbacReq {
			return rbacReq{method: "DELETE", path: rbacPath(m.id, "keys", freshKey(t, f.target))}
		}, want: ownerAdmin(rbacOK204)},

		// Generations: everyone reads; members only their own keys'.
		{name: "generations/list", req: fixed("GET", rbacPath(m.id, "generations"), ""), want: rbacEvery(rbacOK200),
			check: func(t *testing.T, _ string, r rbacResp) { require.NotNil(t, r.list()) }},

		// Credentials.
		{name: "credentials/list", req: fixed("GET", rbacPath(m.id, "credentials"), ""), want: readers(rbacOK200),
			check: func(t *testing.T, _ string, r rbacResp) {
				require.NotEmpty(t, r.list())
				for _, it := range r.list() {
					noSecretField(t, it)
					require.Equal(t, m.id, it["workspace_id"])
					require.NotEqual(t, f.oCred, it["id"])
				}
			}},
		{name: "credentials/get", req: fixed("GET", rbacPath(m.id, "credentials", f.cred), ""), want: readers(rbacOK200),
			check: func(t *testing.T, _ string, r rbacResp) {
				noSecretField(t, r.data())
				require.Equal(t, "sk-…cdef", r.data()["label"], "only a masked label")
			}},
		{name: "credentials/create", req: fixed("POST", rbacPath(m.id, "credentials"), rbacCredBody), want: ownerAdmin(rbacOK201),
			check: func(t *testing.T, _ string, r rbacResp) {
				noSecretField(t, r.data())
				require.Equal(t, "sk-…cdef", r.data()["label"])
			}},
		{name: "credentials/patch", req: func(t *testing.T, _ string) rbacReq {
			return rbacReq{method: "PATCH", path: rbacPath(m.id, "credentials", f.newCred(t, m.id, ownerKey)),
				body: `{"name":"renamed","api_key":"` + rbacCredSecret + `-rotated"}`}
		}, want: ownerAdmin(rbacOK200), check: func(t *testing.T, _ string, r rbacResp) {
			require.Equal(t, "renamed", r.data()["name"])
			require.NotContains(t, string(r.raw), "rotated")
		}},
		{name: "credentials/delete", req: func(t *testing.T, _ string) rbacReq {
			return rbacReq{method: "DELETE", path: rbacPath(m.id, "credentials", f.newCred(t, m.id, ownerKey))}
		}, want: ownerAdmin(rbacOK204)},
	}

	for _, rt := range routes {
		for _, role := range rbacRoles {
			want, ok := rt.want[role]
			require.True(t, ok, "%s: no outcome for %s", rt.name, role)
			t.Run(rt.name+"/"+role, func(t *testing.T) {
				rq := rt.req(t, role)
				key := rq.key
				if key == "" {
					key = m.keys[role]
				}
				r := f.call(t, rq.method, rq.path, key, rq.body)
				rbacRequire(t, want, r, role)
				if want.status < 300 && rt.check != nil {
					rt.check(t, role, r)
				}
			})
		}
	}

	t.Run("member may not set key policy on its own key", func(t *testing.T) {
		for _, body := range []string{
			`{"limit":5}`, `{"limit":null}`, `{"limit_reset":"monthly"}`, `{"limit_reset":null}`,
			`{"include_byok_in_limit":true}`, `{"require_zdr":true}`, `{"require_zdr":false}`,
			`{"expires_at":"2999-01-01T00:00:00Z"}`, `{"expires_at":null}`, `{"name":"x","limit":1}`,
		} {
			t.Run(body, func(t *testing.T) {
				id := freshKey(t, m.members[rMember])
				r := f.call(t, "PATCH", rbacPath(m.id, "keys", id), m.keys[rMember], body)
				rbacRequire(t, rbacDeny(rOwner, rAdmin), r, rMember)
				// Nothing changed.
				got := f.must(t, http.StatusOK, "GET", rbacPath(m.id, "keys", id), ownerKey, "").data()
				require.Equal(t, "k", got["name"])
				require.Nil(t, got["limit"])
				require.Equal(t, false, got["require_zdr"])
			})
		}
	})

	t.Run("admin cannot become owner through a key", func(t *testing.T) {
		w := f.newWorkspace(t, "escalation", true)
		r := f.call(t, "POST", rbacPath(w.id, "keys"), w.keys[rAdmin], `{"name":"mine now","member_id":"`+w.members[rOwner]+`"}`)
		rbacRequire(t, rbacDeny(rOwner), r, rAdmin)
	})

	t.Run("a role change applies to the member's keys at once", func(t *testing.T) {
		id := freshMember(t, rAdmin)
		_, key := f.newKey(t, m.id, ownerKey, id)
		f.must(t, http.StatusCreated, "POST", rbacPath(m.id, "members"), key, `{"name":"by admin","role":"viewer"}`)
		f.must(t, http.StatusOK, "PATCH", rbacPath(m.id, "members", id), ownerKey, `{"role":"viewer"}`)
		rbacRequire(t, rbacDeny(rOwner, rAdmin), f.call(t, "POST", rbacPath(m.id, "members"), key, `{"name":"x","role":"viewer"}`), rViewer)
		f.must(t, http.StatusNoContent, "DELETE", rbacPath(m.id, "members", id), ownerKey, "")
		r := f.call(t, "GET", rbacPath(m.id), key, "")
		rbacRequire(t, rbacOutcome{status: 401, typ: "authentication"}, r, "")
	})

	t.Run("a deleted workspace's keys stop working", func(t *testing.T) {
		w := f.newWorkspace(t, "gone", true)
		f.must(t, http.StatusNoContent, "DELETE", rbacPath(w.id), w.keys[rOwner], "")
		for _, role := range rbacRoles {
			rbacRequire(t, rbacOutcome{status: 401, typ: "authentication"}, f.call(t, "GET", "/v1/workspaces", w.keys[role], ""), role)
		}
		rbacRequire(t, rbacNotFound, f.call(t, "GET", rbacPath(w.id), ownerKey, ""), rOwner)
	})
}

func TestRBACLastOwner(t *testing.T) {
	t.Parallel()
	f := newRBACFix(t)
	t.Run("sole owner cannot demote itself", func(t *testing.T) {
		w := f.newWorkspace(t, "solo", false)
		for _, role := range []string{"admin", "member", "viewer"} {
			r := f.call(t, "PATCH", rbacPath(w.id, "members", w.members[rOwner]), w.keys[rOwner], `{"role":"`+role+`"}`)
			rbacRequire(t, rbacConflict, r, rOwner)
		}
		got := f.must(t, http.StatusOK, "GET", rbacPath(w.id, "members", w.members[rOwner]), w.keys[rOwner], "").data()
		require.Equal(t, "owner", got["role"])
	})
	t.Run("sole owner cannot remove itself", func(t *testing.T) {
		w := f.newWorkspace(t, "solo", false)
		rbacRequire(t, rbacConflict, f.call(t, "DELETE", rbacPath(w.id, "members", w.members[rOwner]), w.keys[rOwner], ""), rOwner)
		f.must(t, http.StatusOK, "GET", rbacPath(w.id, "members", w.members[rOwner]), w.keys[rOwner], "")
	})
	t.Run("sole owner may rename itself and set its own role again", func(t *testing.T) {
		w := f.newWorkspace(t, "solo", false)
		r := f.must(t, http.StatusOK, "PATCH", rbacPath(w.id, "members", w.members[rOwner]), w.keys[rOwner], `{"name":"me","role":"owner"}`)
		require.Equal(t, "me", r.data()["name"])
		require.Equal(t, "owner", r.data()["role"])
	})
	t.Run("admin cannot demote or remove the sole owner", func(t *testing.T) {
		w := f.newWorkspace(t, "solo", true)
		path := rbacPath(w.id, "members", w.members[rOwner])
		rbacRequire(t, rbacDeny(rOwner), f.call(t, "PATCH", path, w.keys[rAdmin], `{"role":"admin"}`), rAdmin)
		rbacRequire(t, rbacDeny(rOwner), f.call(t, "DELETE", path, w.keys[rAdmin], ""), rAdmin)
	})
	t.Run("of two owners one may go, then the last stays", func(t *testing.T) {
		w := f.newWorkspace(t, "duo", false)
		second := f.newMember(t, w.id, w.keys[rOwner], rOwner)
		_, secondKey := f.newKey(t, w.id, w.keys[rOwner], second)
		// The first owner steps down to admin: allowed, another owner is left.
		f.must(t, http.StatusOK, "PATCH", rbacPath(w.id, "members", w.members[rOwner]), w.keys[rOwner], `{"role":"admin"}`)
		// Now an admin, it can no longer touch the owner.
		rbacRequire(t, rbacDeny(rOwner), f.call(t, "PATCH", rbacPath(w.id, "members", second), w.keys[rOwner], `{"role":"admin"}`), rAdmin)
		// The last owner can neither step down nor leave.
		rbacRequire(t, rbacConflict, f.call(t, "PATCH", rbacPath(w.id, "members", second), secondKey, `{"role":"viewer"}`), rOwner)
		rbacRequire(t, rbacConflict, f.call(t, "DELETE", rbacPath(w.id, "members", second), secondKey, ""), rOwner)
		// It can remove the former owner, now an admin.
		f.must(t, http.StatusNoContent, "DELETE", rbacPath(w.id, "members", w.members[rOwner]), secondKey, "")
	})
	t.Run("of two owners one may remove the other", func(t *testing.T) {
		w := f.newWorkspace(t, "duo", false)
		second := f.newMember(t, w.id, w.keys[rOwner], rOwner)
		_, secondKey := f.newKey(t, w.id, w.keys[rOwner], second)
		f.must(t, http.StatusNoContent, "DELETE", rbacPath(w.id, "members", w.members[rOwner]), secondKey, "")
		rbacRequire(t, rbacOutcome{status: 401, typ: "authentication"}, f.call(t, "GET", rbacPath(w.id), w.keys[rOwner], ""), "")
		rbacRequire(t, rbacConflict, f.call(t, "DELETE", rbacPath(w.id, "members", second), secondKey, ""), rOwner)
	})
}

// rbacIsoCase is a request that names another workspace, its ids or ids that
// exist nowhere; real and fake must both answer want.
type rbacIsoCase struct {
	name, method, body string
	real, fake         string
	want               map[string]rbacOutcome
	intact             func(t *testing.T) // the other workspace's resource is unchanged
}

func TestRBACWorkspaceIsolation(t *testing.T) {
	t.Parallel()
	f := newRBACFix(t)
	m, o := f.main, f.other
	oKey := o.keys[rOwner]
	stillThere := func(path string) func(*testing.T) {
		return func(t *testing.T) { f.must(t, http.StatusOK, "GET", path, oKey, "") }
	}
	gates := func(allowed ...string) map[string]rbacOutcome {
		// Roles that pass the route's permission reach the lookup: 404.
		// The others are refused before any lookup, whatever the id.
		out := map[string]rbacOutcome{}
		for _, r := range rbacRoles {
			out[r] = rbacNotFound
		}
		need := append([]string(nil), allowed...)
		for _, r := range rbacRoles {
			if !slices.Contains(allowed, r) {
				out[r] = rbacDeny(need...)
			}
		}
		return out
	}
	var cases []rbacIsoCase

	// 1. The other workspace's path with its own real ids.
	for _, c := range []struct{ name, method, rest, fakeRest, body string }{
		{"get workspace", "GET", "", "", ""},
		{"patch workspace", "PATCH", "", "", `{"name":"hijacked"}`},
		{"delete workspace", "DELETE", "", "", ""},
		{"list members", "GET", "/members", "/members", ""},
		{"create member", "POST", "/members", "/members", `{"name":"spy","role":"owner"}`},
		{"get member", "GET", "/members/" + f.oMember, "/members/" + rbacFakeMember, ""},
		{"patch member", "PATCH", "/members/" + f.oMember, "/members/" + rbacFakeMember, `{"name":"x"}`},
		{"promote member", "PATCH", "/members/" + f.oMember, "/members/" + rbacFakeMember, `{"role":"owner"}`},
		{"demote owner", "PATCH", "/members/" + o.members[rOwner], "/members/" + rbacFakeMember, `{"role":"viewer"}`},
		{"delete member", "DELETE", "/members/" + f.oMember, "/members/" + rbacFakeMember, ""},
		{"list keys", "GET", "/keys", "/keys", ""},
		{"create key", "POST", "/keys", "/keys", `{"name":"spy"}`},
		{"create key for its member", "POST", "/keys", "/keys", `{"name":"spy","member_id":"` + f.oMember + `"}`},
		{"get key", "GET", "/keys/" + f.oKey, "/keys/" + rbacFakeKey, ""},
		{"patch key", "PATCH", "/keys/" + f.oKey, "/keys/" + rbacFakeKey, `{"disabled":true}`},
		{"patch key limit", "PATCH", "/keys/" + f.oKey, "/keys/" + rbacFakeKey, `{"limit":0}`},
		{"delete key", "DELETE", "/keys/" + f.oKey, "/keys/" + rbacFakeKey, ""},
		{"delete owner key", "DELETE", "/keys/" + o.keyIDs[rOwner], "/keys/" + rbacFakeKey, ""},
		{"list credentials", "GET", "/credentials", "/credentials", ""},
		{"create credential", "POST", "/credentials", "/credentials", rbacCredBody},
		{"get credential", "GET", "/credentials/" + f.oCred, "/credentials/" + rbacFakeCred, ""},
		{"patch credential", "PATCH", "/credentials/" + f.oCred, "/credentials/" + rbacFakeCred, `{"base_url":"https://evil.example.com/v1"}`},
		{"delete credential", "DELETE", "/credentials/" + f.oCred, "/credentials/" + rbacFakeCred, ""},
	} {
		cases = append(cases, rbacIsoCase{
			name: "other workspace path/" + c.name, method: c.method, body: c.body,
			real: rbacPath(o.id) + c.rest, fake: rbacPath(rbacFakeWS) + c.fakeRest, want: rbacEvery(rbacNotFound),
		})
	}

	// 2. The other workspace's path with this workspace's ids.
	for _, c := range []struct{ name, method, rest, body string }{
		{"get member", "GET", "/members/" + m.members[rAdmin], ""},
		{"patch member", "PATCH", "/members/" + m.members[rAdmin], `{"name":"x"}`},
		{"delete member", "DELETE", "/members/" + m.members[rViewer], ""},
		{"create key for this member", "POST", "/keys", `{"name":"spy","member_id":"` + m.members[rViewer] + `"}`},
		{"get key", "GET", "/keys/" + f.tKey, ""},
		{"patch key", "PATCH", "/keys/" + f.tKey, `{"name":"x"}`},
		{"delete key", "DELETE", "/keys/" + f.tKey, ""},
		{"get credential", "GET", "/credentials/" + f.cred, ""},
		{"patch credential", "PATCH", "/credentials/" + f.cred, `{"name":"x"}`},
		{"delete credential", "DELETE", "/credentials/" + f.cred, ""},
	} {
		cases = append(cases, rbacIsoCase{
			name: "other workspace path with this workspace's ids/" + c.name, method: c.method, body: c.body,
			real: rbacPath(o.id) + c.rest, fake: rbacPath(rbacFakeWS) + c.rest, want: rbacEvery(rbacNotFound),
		})
	}

	// 3. This workspace's path with the other workspace's real ids.
	own := func(rest string) string { return rbacPath(m.id) + rest }
	cases = append(cases,
		rbacIsoCase{name: "other's ids/get member", method: "GET", real: own("/members/" + f.oMember), fake: own("/members/" + rbacFakeMember),
			want: rbacEvery(rbacNotFound)},
		rbacIsoCase{name: "other's ids/rename member", method: "PATCH", body: `{"name":"x"}`,
			real: own("/members/" + f.oMember), fake: own("/members/" + rbacFakeMember),
			want: gates(rOwner, rAdmin), intact: stillThere(rbacPath(o.id, "members", f.oMember))},
		rbacIsoCase{name: "other's ids/promote member", method: "PATCH", body: `{"role":"owner"}`,
			real: own("/members/" + f.oMember), fake: own("/members/" + rbacFakeMember),
			want: gates(rOwner, rAdmin), intact: stillThere(rbacPath(o.id, "members", f.oMember))},
		rbacIsoCase{name: "other's ids/demote owner", method: "PATCH", body: `{"role":"viewer"}`,
			real: own("/members/" + o.members[rOwner]), fake: own("/members/" + rbacFakeMember),
			want: gates(rOwner, rAdmin)},
		rbacIsoCase{name: "other's ids/delete member", method: "DELETE",
			real: own("/members/" + f.oMember), fake: own("/members/" + rbacFakeMember),
			want: gates(rOwner, rAdmin), intact: stillThere(rbacPath(o.id, "members", f.oMember))},
		rbacIsoCase{name: "other's ids/delete owner", method: "DELETE",
			real: own("/members/" + o.members[rOwner]), fake: own("/members/" + rbacFakeMember),
			want: gates(rOwner, rAdmin), intact: stillThere(rbacPath(o.id, "members", o.members[rOwner]))},
		rbacIsoCase{name: "other's ids/get key", method: "GET", real: own("/keys/" + f.oKey), fake: own("/keys/" + rbacFakeKey),
			want: rbacEvery(rbacNotFound)},
		rbacIsoCase{name: "other's ids/patch key", method: "PATCH", body: `{"disabled":true}`,
			real: own("/keys/" + f.oKey), fake: own("/keys/" + rbacFakeKey), want: rbacEvery(rbacNotFound),
			intact: func(t *testing.T) {
				require.Equal(t, false, f.must(t, 200, "GET", rbacPath(o.id, "keys", f.oKey), oKey, "").data()["disabled"])
			}},
		rbacIsoCase{name: "other's ids/delete key", method: "DELETE", real: own("/keys/" + f.oKey), fake: own("/keys/" + rbacFakeKey),
			want: rbacEvery(rbacNotFound), intact: stillThere(rbacPath(o.id, "keys", f.oKey))},
		rbacIsoCase{name: "other's ids/delete owner key", method: "DELETE", real: own("/keys/" + o.keyIDs[rOwner]), fake: own("/keys/" + rbacFakeKey),
			want: rbacEvery(rbacNotFound), intact: stillThere(rbacPath(o.id))},
		rbacIsoCase{name: "other's ids/create key for its member", method: "POST",
			body: `{"name":"spy","member_id":"` + f.oMember + `"}`, real: own("/keys"), fake: own("/keys"),
			want: map[string]rbacOutcome{rOwner: rbacNotFound, rAdmin: rbacNotFound, rMember: rbacDeny(rOwner, rAdmin), rViewer: rbacDeny(rOwner, rAdmin, rMember)}},
		rbacIsoCase{name: "other's ids/get credential", method: "GET", real: own("/credentials/" + f.oCred), fake: own("/credentials/" + rbacFakeCred),
			want: gates(rOwner, rAdmin, rViewer)},
		rbacIsoCase{name: "other's ids/patch credential", method: "PATCH", body: `{"base_url":"https://evil.example.com/v1"}`,
			real: own("/credentials/" + f.oCred), fake: own("/credentials/" + rbacFakeCred), want: gates(rOwner, rAdmin),
			intact: func(t *testing.T) {
				require.Nil(t, f.must(t, 200, "GET", rbacPath(o.id, "credentials", f.oCred), oKey, "").data()["base_url"])
			}},
		rbacIsoCase{name: "other's ids/delete credential", method: "DELETE", real: own("/credentials/" + f.oCred), fake: own("/credentials/" + rbacFakeCred),
			want: gates(rOwner, rAdmin), intact: stillThere(rbacPath(o.id, "credentials", f.oCred))},
	)
	// The /api/v1 alias is the same router: spot-check it.
	cases = append(cases,
		rbacIsoCase{name: "api alias/get other workspace", method: "GET", real: "/api" + rbacPath(o.id), fake: "/api" + rbacPath(rbacFakeWS), want: rbacEvery(rbacNotFound)},
		rbacIsoCase{name: "api alias/delete other's key", method: "DELETE", real: "/api" + own("/keys/"+f.oKey), fake: "/api" + own("/keys/"+rbacFakeKey),
			want: rbacEvery(rbacNotFound), intact: stillThere(rbacPath(o.id, "keys", f.oKey))},
	)

	for _, c := range cases {
		for _, role := range rbacRoles {
			t.Run(c.name+"/"+role, func(t *testing.T) {
				for _, path := range []string{c.real, c.fake} {
					r := f.call(t, c.method, path, m.keys[role], c.body)
					rbacRequire(t, c.want[role], r, role)
				}
				if c.intact != nil {
					c.intact(t)
				}
			})
		}
	}

	// And the other way round: the other workspace's owner touching this one.
	t.Run("other owner cannot reach this workspace", func(t *testing.T) {
		for _, rq := range []rbacReq{
			{method: "GET", path: rbacPath(m.id)},
			{method: "DELETE", path: rbacPath(m.id)},
			{method: "GET", path: rbacPath(m.id, "members")},
			{method: "PATCH", path: rbacPath(m.id, "members", m.members[rOwner]), body: `{"role":"viewer"}`},
			{method: "POST", path: rbacPath(m.id, "members"), body: `{"name":"spy","role":"owner"}`},
			{method: "GET", path: rbacPath(m.id, "keys")},
			{method: "POST", path: rbacPath(m.id, "keys"), body: `{"name":"spy","member_id":"` + m.members[rOwner] + `"}`},
			{method: "DELETE", path: rbacPath(m.id, "keys", m.keyIDs[rOwner])},
			{method: "GET", path: rbacPath(m.id, "credentials")},
			{method: "DELETE", path: rbacPath(m.id, "credentials", f.cred)},
		} {
			rbacRequire(t, rbacNotFound, f.call(t, rq.method, rq.path, oKey, rq.body), rOwner)
		}
		// Listing shows each owner only its own workspace.
		r := f.must(t, http.StatusOK, "GET", "/v1/workspaces", oKey, "")
		require.Len(t, r.list(), 1)
		require.Equal(t, o.id, r.list()[0]["id"])
	})

	t.Run("other workspace untouched", func(t *testing.T) {
		w := f.must(t, http.StatusOK, "GET", rbacPath(o.id), oKey, "").data()
		require.Equal(t, "other", w["name"])
		ms := f.must(t, http.StatusOK, "GET", rbacPath(o.id, "members"), oKey, "").list()
		require.Len(t, ms, 2, "no member was added or removed")
		for _, mm := range ms {
			require.NotEqual(t, "x", mm["name"])
			if mm["id"] == f.oMember {
				require.Equal(t, "member", mm["role"])
			}
		}
		require.Len(t, f.must(t, http.StatusOK, "GET", rbacPath(o.id, "keys"), oKey, "").list(), 2)
		require.Len(t, f.must(t, http.StatusOK, "GET", rbacPath(o.id, "credentials"), oKey, "").list(), 1)
	})
}
