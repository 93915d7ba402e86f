package outlock

import (
	"errors"
	"os"
	"os/exec"
	"path/filepath"
	"strings"
	"testing"
	"time"
)

// A second writer fails at once and the error names the first; after
// Release the folder can be locked again.
func TestSecondWriterFails(t *testing.T) {
	dir := filepath.Join(t.TempDir(), "run")
	l, err := Acquire(dir, "golf train --out run")
	if err != nil {
		t.Fatal(err)
	}
	_, err = Acquire(dir, "golf train --out run (second)")
	if !errors.Is(err, ErrBusy) || !strings.Contains(err.Error(), `"golf train --out run"`) || !strings.Contains(err.Error(), "pid ") {
		t.Fatalf("second Acquire: %v, want ErrBusy naming the holder", err)
	}
	if h, held := Held(dir); !held || h == nil || h.PID != os.Getpid() {
		t.Fatalf("Held = %+v, %v while locked", h, held)
	}
	if err := l.Release(); err != nil {
		t.Fatal(err)
	}
	if _, err := os.Stat(filepath.Join(dir, FileName)); !os.IsNotExist(err) {
		t.Fatalf("lock file left after Release: %v", err)
	}
	if _, held := Held(dir); held {
		t.Fatal("Held after Release")
	}
	l2, err := Acquire(dir, "again")
	if err != nil {
		t.Fatal(err)
	}
	l2.Release()
	l2.Release() // twice is fine
}

// A lock whose holder was killed (SIGKILL: no clean-up at all) is taken
// over by the next writer, though the killed holder's file is still there.
func TestKilledHolderIsStale(t *testing.T) {
	if os.Getenv("OUTLOCK_HOLD") != "" {
		if _, err := Acquire(os.Getenv("OUTLOCK_HOLD"), "holder"); err != nil {
			os.Exit(3)
		}
		os.Stdout.WriteString("locked\n")
		time.Sleep(time.Minute)
		os.Exit(0)
	}
	dir := t.TempDir()
	cmd := exec.Command(os.Args[0], "-test.run", "^TestKilledHolderIsStale$")
	cmd.Env = append(os.Environ(), "OUTLOCK_HOLD="+dir)
	out, err := cmd.StdoutPipe()
	if err != nil {
		t.Fatal(err)
	}
	if err := cmd.Start(); err != nil {
		t.Fatal(err)
	}
	buf := make([]byte, 7)
	if _, err := out.Read(buf); err != nil || string(buf) != "locked\n" {
		cmd.Process.Kill()
		t.Fatalf("holder did not lock: %q %v", buf, err)
	}
	if _, err := Acquire(dir, "while held"); !errors.Is(err, ErrBusy) || !strings.Contains(err.Error(), `"holder"`) {
		t.Fatalf("Acquire while another process holds it: %v", err)
	}
	cmd.Process.Kill()
	cmd.Wait()
	if _, err := os.Stat(filepath.Join(dir, FileName)); err != nil {
		t.Fatalf("the killed holder's lock file should still be there: %v", err)
	}
	l, err := Acquire(dir, "after the kill")
	if err != nil {
		t.Fatalf("Acquire after the holder died: %v", err)
	}
	if h, _ := ReadHolder(dir); h == nil || h.Command != "after the kill" || h.PID != os.Getpid() {
		t.Fatalf("holder record %+v", h)
	}
	l.Release()
}
