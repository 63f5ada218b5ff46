package server

import (
	"net"
	"sync"
	"syscall"
)

// hangups notices clients hanging up on detached connections with one epoll
// set and one goroutine for them all, where a read pending on each would
// keep a goroutine (and its stack) per held stream. It starts with the first
// watch and ends with close. Where epoll fails, or a connection has no file
// descriptor, a connection falls back to readWatch.
type hangups struct {
	mu   sync.Mutex
	epfd int    // valid while started
	wake [2]int // a pipe; a byte written to it ends the loop
	on   bool
	next uint64 // ids: the epoll data of each registration (0 is the pipe)
	cuts map[uint64]func()
	done chan struct{}
}

// rdhup: the peer closed its side (or reset it: EPOLLHUP and EPOLLERR are
// always reported). One-shot, since a hang-up needs telling once; data the
// client sends ahead (a pipelined request) is not a hang-up and is left for
// the next request.
const rdhup = syscall.EPOLLRDHUP | syscall.EPOLLONESHOT

// watch starts watching conn, whose client sent pre ahead; cut runs when
// the client hangs up.
func (h *hangups) watch(conn net.Conn, pre []byte, cut func()) watch {
	sc, ok := conn.(syscall.Conn)
	if len(pre) > 0 || !ok {
		return readWatch(conn, pre, cut)
	}
	raw, err := sc.SyscallConn()
	if err != nil {
		return readWatch(conn, pre, cut)
	}
	id, ok := h.add(cut)
	if !ok {
		return readWatch(conn, pre, cut)
	}
	var cerr error
	if err := raw.Control(func(fd uintptr) {
		ev := syscall.EpollEvent{Events: rdhup, Fd: int32(uint32(id)), Pad: int32(uint32(id >> 32))}
		cerr = syscall.EpollCtl(h.epfd, syscall.EPOLL_CTL_ADD, int(fd), &ev)
	}); err != nil || cerr != nil {
		h.forget(id)
		return readWatch(conn, pre, cut)
	}
	return &epollWatch{h: h, id: id, raw: raw}
}

type epollWatch struct {
	h   *hangups
	id  uint64
	raw syscall.RawConn
}

func (w *epollWatch) stop() ([]byte, error) {
	w.h.forget(w.id)
	// A closed connection's registration went with its descriptor, and
	// Control refuses a closed connection: a reused descriptor is never
	// touched.
	_ = w.raw.Control(func(fd uintptr) { _ = syscall.EpollCtl(w.h.epfd, syscall.EPOLL_CTL_DEL, int(fd), nil) })
	return nil, nil
}

// add registers cut under a new id, starting the loop if need be.
func (h *hangups) add(cut func()) (uint64, bool) {
	h.mu.Lock()
	defer h.mu.Unlock()
	if !h.on && !h.startLocked() {
		return 0, false
	}
	h.next++
	h.cuts[h.next] = cut
	return h.next, true
}

func (h *hangups) forget(id uint64) {
	h.mu.Lock()
	delete(h.cuts, id)
	h.mu.Unlock()
}

func (h *hangups) startLocked() bool {
	epfd, err := syscall.EpollCreate1(syscall.EPOLL_CLOEXEC)
	if err != nil {
		return false
	}
	if err := syscall.Pipe2(h.wake[:], syscall.O_CLOEXEC|syscall.O_NONBLOCK); err != nil {
		_ = syscall.Close(epfd)
		return false
	}
	ev := syscall.EpollEvent{Events: syscall.EPOLLIN}
	if err := syscall.EpollCtl(epfd, syscall.EPOLL_CTL_ADD, h.wake[0], &ev); err != nil {
		_ = syscall.Close(epfd)
		_ = syscall.Close(h.wake[0])
		_ = syscall.Close(h.wake[1])
		return false
	}
	h.epfd, h.on, h.cuts, h.done = epfd, true, map[uint64]func(){}, make(chan struct{})
	go h.loop(epfd, h.done)
	return true
}

// loop cuts the streams whose clients hung up, until the pipe says stop.
func (h *hangups) loop(epfd int, done chan struct{}) {
	defer close(done)
	var evs [64]syscall.EpollEvent
	for {
		n, err := syscall.EpollWait(epfd, evs[:], -1)
		if err == syscall.EINTR {
			continue
		}
		if err != nil {
			h.fail()
			return
		}
		for _, ev := range evs[:n] {
			id := uint64(uint32(ev.Fd)) | uint64(uint32(ev.Pad))<<32
			if id == 0 {
				return
			}
			h.mu.Lock()
			cut := h.cuts[id]
			delete(h.cuts, id)
			h.mu.Unlock()
			if cut != nil {
				cut()
			}
		}
	}
}

// fail cuts every watched stream: with the loop gone nothing would notice
// their clients leaving. (epoll_wait fails only on a bad descriptor.)
func (h *hangups) fail() {
	h.mu.Lock()
	cuts := h.cuts
	h.cuts = map[uint64]func(){}
	_ = syscall.Close(h.epfd)
	_ = syscall.Close(h.wake[0])
	_ = syscall.Close(h.wake[1])
	h.on = false // the next watch starts afresh
	h.mu.Unlock()
	for _, cut := range cuts {
		cut()
	}
}

// close ends the loop and releases its descriptors; the streams watched
// must have ended.
func (h *hangups) close() {
	h.mu.Lock()
	defer h.mu.Unlock()
	if !h.on {
		return
	}
	_, _ = syscall.Write(h.wake[1], []byte{0})
	<-h.done
	_ = syscall.Close(h.epfd)
	_ = syscall.Close(h.wake[0])
	_ = syscall.Close(h.wake[1])
	h.on = false
}
