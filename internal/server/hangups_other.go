//go:build !linux

package server

import "net"

// hangups, where epoll is not available, keeps a read pending on each
// detached connection, as net/http's background read does for a handler.
type hangups struct{}

func (hangups) close() {}

// watch starts watching conn, whose client sent pre ahead; cut runs when
// the client hangs up.
func (hangups) watch(conn net.Conn, pre []byte, cut func()) watch { return readWatch(conn, pre, cut) }
