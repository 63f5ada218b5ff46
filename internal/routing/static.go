package routing

import "context"

// Static is the same set of credentials for every workspace: the operator's
// provider keys from the environment.
type Static Set

// For implements Credentials.
func (s Static) For(context.Context, string) (Set, error) { return Set(s), nil }
