// Package progress prints periodic progress lines for long work: how much is
// done, the rate, and the estimated time left, e.g.
//
//	build: 12.4M/30.0M tokens (41.3%) 2.10M tokens/s eta 8s
//
// Lines go to an io.Writer (usually stderr) at most once per interval, so the
// output stays readable in logs and terminals alike.
package progress

import (
	"fmt"
	"io"
	"sync"
	"time"
)

// Meter tracks the progress of one piece of work. It is safe for concurrent use.
type Meter struct {
	mu       sync.Mutex
	w        io.Writer
	label    string
	unit     string
	total    int64
	done     int64
	start    time.Time
	last     time.Time
	interval time.Duration
	now      func() time.Time
}

// New returns a meter that writes to w (nil silences it) under label, counting
// unit ("tokens", "steps", "bytes"). total may be 0 when unknown.
func New(w io.Writer, label, unit string, total int64) *Meter {
	now := time.Now
	t := now()
	return &Meter{w: w, label: label, unit: unit, total: total, start: t, last: t, interval: 2 * time.Second, now: now}
}

// SetInterval changes the minimum time between two printed lines.
func (m *Meter) SetInterval(d time.Duration) { m.mu.Lock(); m.interval = d; m.mu.Unlock() }

// SetTotal changes the expected total (e.g. once it becomes known).
func (m *Meter) SetTotal(total int64) { m.mu.Lock(); m.total = total; m.mu.Unlock() }

// Add records n more units done and prints a line if the interval has passed.
func (m *Meter) Add(n int64) {
	m.mu.Lock()
	defer m.mu.Unlock()
	m.done += n
	if t := m.now(); t.Sub(m.last) >= m.interval {
		m.last = t
		m.print(t, "")
	}
}

// Done prints a final line with the total and the overall rate.
func (m *Meter) Done() {
	m.mu.Lock()
	defer m.mu.Unlock()
	m.print(m.now(), " done")
}

// Rate returns the units per second so far.
func (m *Meter) Rate() float64 {
	m.mu.Lock()
	defer m.mu.Unlock()
	return rate(m.done, m.now().Sub(m.start))
}

func rate(n int64, d time.Duration) float64 {
	if d <= 0 {
		return 0
	}
	return float64(n) / d.Seconds()
}

func (m *Meter) print(t time.Time, suffix string) {
	if m.w == nil {
		return
	}
	elapsed := t.Sub(m.start)
	r := rate(m.done, elapsed)
	line := fmt.Sprintf("%s: %s", m.label, Count(float64(m.done)))
	if m.total > 0 {
		line += fmt.Sprintf("/%s %s (%.1f%%)", Count(float64(m.total)), m.unit, 100*float64(m.done)/float64(m.total))
	} else {
		line += " " + m.unit
	}
	line += fmt.Sprintf(" %s %s/s", Count(r), m.unit)
	if suffix == "" && m.total > 0 && r > 0 && m.done < m.total {
		line += " eta " + Duration(time.Duration(float64(m.total-m.done)/r*float64(time.Second)))
	} else {
		line += " elapsed " + Duration(elapsed)
	}
	fmt.Fprintln(m.w, line+suffix)
}

// Count formats a number compactly: 2.5, 950, 12.4k, 3.10M, 7.22G.
func Count(v float64) string {
	switch {
	case v >= 1e9:
		return fmt.Sprintf("%.2fG", v/1e9)
	case v >= 1e6:
		return fmt.Sprintf("%.2fM", v/1e6)
	case v >= 1e4:
		return fmt.Sprintf("%.1fk", v/1e3)
	case v >= 100 || v == float64(int64(v)):
		return fmt.Sprintf("%.0f", v)
	default:
		return fmt.Sprintf("%.1f", v)
	}
}

// Duration formats a duration rounded for humans: 850ms, 42s, 3m07s, 1h02m.
func Duration(d time.Duration) string {
	switch {
	case d < time.Second:
		return fmt.Sprintf("%dms", d.Milliseconds())
	case d < time.Minute:
		return fmt.Sprintf("%.0fs", d.Seconds())
	case d < time.Hour:
		return fmt.Sprintf("%dm%02ds", int(d.Minutes()), int(d.Seconds())%60)
	default:
		return fmt.Sprintf("%dh%02dm", int(d.Hours()), int(d.Minutes())%60)
	}
}
