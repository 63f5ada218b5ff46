package server

import (
	"io"
	"net"
	"testing"
	"time"

	"github.com/stretchr/testify/require"
)

// pair is a loopback TCP connection: the gateway's side and the client's.
func pair(t *testing.T) (server, client net.Conn) {
	t.Helper()
	ln, err := net.Listen("tcp", "127.0.0.1:0")
	require.NoError(t, err)
	defer ln.Close()
	client, err = net.Dial("tcp", ln.Addr().String())
	require.NoError(t, err)
	server, err = ln.Accept()
	require.NoError(t, err)
	t.Cleanup(func() { _ = server.Close(); _ = client.Close() })
	return server, client
}

// eachWatcher runs f once per way of watching a detached connection.
func eachWatcher(t *testing.T, f func(t *testing.T, watch func(net.Conn, []byte, func()) watch)) {
	var h hangups
	defer h.close()
	for name, watch := range map[string]func(net.Conn, []byte, func()) watch{"hangups": h.watch, "pending read": readWatch} {
		t.Run(name, func(t *testing.T) { f(t, watch) })
	}
}

// TestAHangUpCutsTheStream: the client closing its connection cuts the
// watched stream at once, however it is watched.
func TestAHangUpCutsTheStream(t *testing.T) {
	eachWatcher(t, func(t *testing.T, watch func(net.Conn, []byte, func()) watch) {
		server, client := pair(t)
		cut := make(chan struct{})
		w := watch(server, nil, func() { close(cut) })
		require.NoError(t, client.Close())
		select {
		case <-cut:
		case <-time.After(2 * time.Second):
			t.Fatal("the hang-up did not cut the stream")
		}
		_, _ = w.stop()
	})
}

// TestAStoppedWatchLeavesTheConnectionAsItWas: stopping a watch cuts
// nothing, and what the client sent meanwhile (its next request) is still
// there for the connection's next reader.
func TestAStoppedWatchLeavesTheConnectionAsItWas(t *testing.T) {
	eachWatcher(t, func(t *testing.T, watch func(net.Conn, []byte, func()) watch) {
		server, client := pair(t)
		w := watch(server, nil, func() { t.Error("cut without a hang-up") })
		_, err := io.WriteString(client, "GET / HTTP/1.1\r\n")
		require.NoError(t, err)
		time.Sleep(50 * time.Millisecond) // the bytes have arrived
		pending, err := w.stop()
		require.NoError(t, err)
		rest := make([]byte, 16-len(pending))
		_ = server.SetReadDeadline(time.Now().Add(2 * time.Second))
		_, err = io.ReadFull(server, rest)
		require.NoError(t, err)
		require.Equal(t, "GET / HTTP/1.1\r\n", string(pending)+string(rest))
	})
}
