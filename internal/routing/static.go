package routing

// Static is the same set of credentials for every workspace: the operator's
// provider keys from the environment.
type Static map[string]Credential

// Credential implements Credentials.
func (s Static) Credential(_, provider string) (Credential, bool) {
	c, ok := s[provider]
	return c, ok
}
