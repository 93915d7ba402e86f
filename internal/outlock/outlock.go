// Package outlock makes an output folder single-writer: a command that
// writes into a folder (golf train's run folder, golf data build's shard
// folder, golf pack's artifact folder) holds its lock for as long as it
// writes, and a second writer fails at once, naming the holder.
//
// The lock is the file .golf.lock in the folder, locked with flock(2) and
// holding JSON that names the holder (pid, host, command, start time). The
// kernel drops the lock when its process dies, however it dies, so a lock
// file left by a killed process is stale by construction: the next writer
// takes it over (its record may name a pid since reused: only the flock
// counts). Where there is no flock the record is the lock, taken over when
// it names a process of this host that no longer exists.
package outlock

import (
	"encoding/json"
	"errors"
	"fmt"
	"os"
	"path/filepath"
	"strings"
	"time"
)

// FileName is the lock file's name inside a locked folder.
const FileName = ".golf.lock"

// Holder describes the process that holds a lock.
type Holder struct {
	PID     int       `json:"pid"`
	Host    string    `json:"host"`
	Command string    `json:"command"`
	Start   time.Time `json:"start"`
}

// String names the holder for error messages.
func (h Holder) String() string {
	return fmt.Sprintf("%q (pid %d on %s, since %s)", h.Command, h.PID, h.Host, h.Start.Format(time.RFC3339))
}

// Lock is a held folder lock. Release it when the writing is done.
type Lock struct {
	dir  string
	file *os.File
}

// ErrBusy is wrapped by Acquire's error when another process holds the lock.
var ErrBusy = errors.New("in use")

// Acquire creates dir if needed and locks it for command (a description
// such as "golf train --out runs/x"). If another live process holds it,
// the error wraps ErrBusy and names that process.
func Acquire(dir, command string) (*Lock, error) {
	if err := os.MkdirAll(dir, 0o755); err != nil {
		return nil, fmt.Errorf("lock %s: %w", dir, err)
	}
	path := filepath.Join(dir, FileName)
	for attempt := 0; ; attempt++ {
		f, err := os.OpenFile(path, os.O_RDWR|os.O_CREATE, 0o644)
		if err != nil {
			return nil, fmt.Errorf("lock %s: %w", dir, err)
		}
		if err := tryLock(f); err != nil {
			f.Close()
			if !errors.Is(err, errWouldBlock) {
				return nil, fmt.Errorf("lock %s: %w", dir, err)
			}
			h, _ := ReadHolder(dir)
			if h == nil {
				return nil, fmt.Errorf("%s is %w by another golf process (its lock file %s is held)", dir, ErrBusy, path)
			}
			return nil, fmt.Errorf("%s is %w by %s", dir, ErrBusy, h)
		}
		// The file may have been removed and recreated by a releasing
		// holder between our open and our lock: then we locked a file no
		// longer in the folder, and must try again on the new one.
		if same, err := samePath(f, path); err != nil || !same {
			f.Close()
			if attempt > 10 {
				return nil, fmt.Errorf("lock %s: the lock file keeps changing", dir)
			}
			continue
		}
		if !flockWorks {
			// Without flock the record is the lock: honour it unless it
			// names a process of this host that has ended.
			if h, _ := ReadHolder(dir); h != nil && !h.stale() {
				f.Close()
				return nil, fmt.Errorf("%s is %w by %s", dir, ErrBusy, h)
			}
		}
		host, _ := os.Hostname()
		rec, _ := json.Marshal(Holder{PID: os.Getpid(), Host: host, Command: command, Start: time.Now().UTC().Truncate(time.Second)})
		if err := f.Truncate(0); err == nil {
			_, err = f.WriteAt(append(rec, '\n'), 0)
		}
		if err != nil {
			f.Close()
			return nil, fmt.Errorf("lock %s: write %s: %w", dir, path, err)
		}
		return &Lock{dir: dir, file: f}, nil
	}
}

// stale reports whether h names a process of this host that has ended (or
// is this very process, which then holds no other lock on the folder).
func (h *Holder) stale() bool {
	host, _ := os.Hostname()
	if h.Host != host {
		return false
	}
	return h.PID == os.Getpid() || !processAlive(h.PID)
}

// ReadHolder returns the holder recorded in dir's lock file, or nil when
// there is none or it cannot be read. It does not say whether the lock is
// held now.
func ReadHolder(dir string) (*Holder, error) {
	b, err := os.ReadFile(filepath.Join(dir, FileName))
	if err != nil {
		return nil, err
	}
	var h Holder
	if err := json.Unmarshal([]byte(strings.TrimSpace(string(b))), &h); err != nil || h.PID == 0 {
		return nil, fmt.Errorf("lock file %s: no holder record", filepath.Join(dir, FileName))
	}
	return &h, nil
}

// Held reports whether a live process holds dir's lock (without taking it).
func Held(dir string) (*Holder, bool) {
	path := filepath.Join(dir, FileName)
	f, err := os.Open(path)
	if err != nil {
		return nil, false
	}
	defer f.Close()
	h, _ := ReadHolder(dir)
	if err := tryLock(f); err != nil {
		return h, errors.Is(err, errWouldBlock)
	}
	unlock(f)
	if !flockWorks && h != nil && !h.stale() && h.PID != os.Getpid() {
		return h, true
	}
	return h, false
}

// Release removes the lock file and drops the lock. It is safe to call on
// a nil Lock and more than once.
func (l *Lock) Release() error {
	if l == nil || l.file == nil {
		return nil
	}
	err := os.Remove(filepath.Join(l.dir, FileName))
	if errors.Is(err, os.ErrNotExist) {
		err = nil
	}
	if cerr := l.file.Close(); err == nil {
		err = cerr
	}
	l.file = nil
	return err
}
