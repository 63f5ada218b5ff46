package records

import (
	"bufio"
	"encoding/json"
	"errors"
	"fmt"
	"io"
	"os"
	"path/filepath"
	"sync"
	"syscall"
	"time"

	"github.com/shopspring/decimal"

	"github.com/perpetuo/perpetuo/internal/ids"
)

// errSpillFull is returned when the spill file reached its bound.
var errSpillFull = errors.New("spill file is full")

// spill is an append-only local file of records that did not fit in memory
// while the database was unreachable, replayed in order once it answers.
//
// Each process owns one file, locked with flock for as long as it runs; a
// file whose lock can be taken belongs to a process that died, and is
// adopted (copied into this one's) and removed, so records a crashed replica
// spilled are written by the next one that starts on the same directory.
type spill struct {
	path string
	max  int64

	mu    sync.Mutex
	f     *os.File
	size  int64 // bytes written
	read  int64 // bytes replayed (a prefix of the file)
	index map[string]spillRef
}

// spillRef finds a spilled record, and keeps what reads of pending spend
// need without decoding it.
type spillRef struct {
	off         int64
	n           int
	workspaceID string
	keyID       string
	cost        decimal.Decimal
	byok        bool
	createdAt   time.Time
}

// openSpill creates this process's spill file in dir.
func openSpill(dir string, max int64) (*spill, error) {
	if err := os.MkdirAll(dir, 0o700); err != nil {
		return nil, fmt.Errorf("spill directory: %w", err)
	}
	path := filepath.Join(dir, fmt.Sprintf("records-%d-%s.spill", os.Getpid(), ids.New("", time.Now())))
	f, err := os.OpenFile(path, os.O_RDWR|os.O_CREATE|os.O_EXCL, 0o600)
	if err != nil {
		return nil, fmt.Errorf("spill file: %w", err)
	}
	if err := syscall.Flock(int(f.Fd()), syscall.LOCK_EX|syscall.LOCK_NB); err != nil {
		_ = f.Close()
		return nil, fmt.Errorf("lock spill file: %w", err)
	}
	return &spill{path: path, max: max, f: f, index: map[string]spillRef{}}, nil
}

// adoptOrphans copies the records of spill files left by dead processes into
// this one and removes them. It returns how many records it adopted and how
// many lines it could not read (a write cut by the crash).
func (s *spill) adoptOrphans() (adopted, corrupt int, err error) {
	paths, err := filepath.Glob(filepath.Join(filepath.Dir(s.path), "*.spill"))
	if err != nil {
		return 0, 0, err
	}
	for _, p := range paths {
		if p == s.path {
			continue
		}
		a, c, err := s.adopt(p)
		adopted, corrupt = adopted+a, corrupt+c
		if err != nil {
			return adopted, corrupt, fmt.Errorf("adopt %s: %w", filepath.Base(p), err)
		}
	}
	return adopted, corrupt, nil
}

func (s *spill) adopt(path string) (adopted, corrupt int, err error) {
	f, err := os.Open(path)
	if err != nil {
		return 0, 0, err
	}
	defer f.Close()
	if err := syscall.Flock(int(f.Fd()), syscall.LOCK_EX|syscall.LOCK_NB); err != nil {
		return 0, 0, nil // its process is alive and replays it itself
	}
	rd := bufio.NewReaderSize(f, 64<<10)
	for {
		line, rerr := rd.ReadBytes('\n')
		if len(line) > 0 {
			var g Generation
			if json.Unmarshal(line, &g) != nil || line[len(line)-1] != '\n' {
				corrupt++
			} else if s.append(g, true) == nil {
				adopted++
			} else {
				corrupt++
			}
		}
		if rerr == io.EOF {
			break
		}
		if rerr != nil {
			return adopted, corrupt, rerr
		}
	}
	return adopted, corrupt, os.Remove(path)
}

// append writes g at the end of the file; force ignores the size bound
// (records adopted or moved from memory at shutdown are never refused).
func (s *spill) append(g Generation, force bool) error {
	b, err := json.Marshal(g)
	if err != nil {
		return fmt.Errorf("encode record: %w", err)
	}
	b = append(b, '\n')
	s.mu.Lock()
	defer s.mu.Unlock()
	if !force && s.size+int64(len(b)) > s.max {
		return errSpillFull
	}
	if _, err := s.f.WriteAt(b, s.size); err != nil {
		return fmt.Errorf("write spill file: %w", err)
	}
	s.index[g.ID] = spillRef{off: s.size, n: len(b), workspaceID: g.WorkspaceID, keyID: g.KeyID,
		cost: g.Cost, byok: g.BYOK, createdAt: g.CreatedAt}
	s.size += int64(len(b))
	return nil
}

// get reads a spilled record that is not replayed yet.
func (s *spill) get(id string) (Generation, bool) {
	s.mu.Lock()
	ref, ok := s.index[id]
	s.mu.Unlock()
	if !ok {
		return Generation{}, false
	}
	b := make([]byte, ref.n)
	var g Generation
	if _, err := s.f.ReadAt(b, ref.off); err != nil || json.Unmarshal(b, &g) != nil {
		return Generation{}, false
	}
	return g, true
}

// next reads up to max records from the replay position; commit(end) marks
// them written.
func (s *spill) next(max int) (gs []Generation, end int64, corrupt int) {
	s.mu.Lock()
	start, size := s.read, s.size
	s.mu.Unlock()
	if start == size {
		return nil, start, 0
	}
	rd := bufio.NewReaderSize(io.NewSectionReader(s.f, start, size-start), 64<<10)
	end = start
	for len(gs) < max {
		line, err := rd.ReadBytes('\n')
		if len(line) == 0 || err != nil && err != io.EOF {
			break
		}
		end += int64(len(line))
		var g Generation
		if json.Unmarshal(line, &g) != nil {
			corrupt++
			continue
		}
		gs = append(gs, g)
	}
	return gs, end, corrupt
}

// commit marks everything before end as written; once all is, the file is
// emptied so it does not grow across outages.
func (s *spill) commit(gs []Generation, end int64) error {
	s.mu.Lock()
	defer s.mu.Unlock()
	for _, g := range gs {
		delete(s.index, g.ID)
	}
	s.read = end
	if s.read < s.size {
		return nil
	}
	clear(s.index)
	s.read, s.size = 0, 0
	if err := s.f.Truncate(0); err != nil {
		return fmt.Errorf("empty spill file: %w", err)
	}
	return nil
}

// spend lists the pending spend of key.
func (s *spill) spend(keyID string, out []Spend) []Spend {
	s.mu.Lock()
	defer s.mu.Unlock()
	for id, ref := range s.index {
		if ref.keyID == keyID {
			out = append(out, Spend{ID: id, Cost: ref.cost, BYOK: ref.byok, At: ref.createdAt})
		}
	}
	return out
}

// stats returns the records and bytes waiting in the file.
func (s *spill) stats() (records int, bytes int64) {
	s.mu.Lock()
	defer s.mu.Unlock()
	return len(s.index), s.size - s.read
}

// close releases the file; an empty one is removed, one with records left
// stays for the next process to adopt.
func (s *spill) close() error {
	s.mu.Lock()
	defer s.mu.Unlock()
	empty := s.size == s.read
	if err := s.f.Close(); err != nil {
		return err
	}
	if empty {
		return os.Remove(s.path)
	}
	return nil
}
