package progress

import (
	"strings"
	"testing"
	"time"
)

func TestMeterPrintsRateAndETA(t *testing.T) {
	var sb strings.Builder
	m := New(&sb, "build", "tokens", 1000)
	clock := m.start
	m.now = func() time.Time { return clock }
	m.SetInterval(time.Second)
	clock = clock.Add(time.Second)
	m.Add(100) // 100 tokens/s, 900 left: eta 9s
	clock = clock.Add(500 * time.Millisecond)
	m.Add(100) // within the interval: no line
	m.Done()
	lines := strings.Split(strings.TrimSpace(sb.String()), "\n")
	if len(lines) != 2 {
		t.Fatalf("want 2 lines (one periodic, one final), got %q", lines)
	}
	if lines[0] != "build: 100/1000 tokens (10.0%) 100 tokens/s eta 9s" {
		t.Errorf("progress line %q", lines[0])
	}
	if lines[1] != "build: 200/1000 tokens (20.0%) 133 tokens/s elapsed 2s done" {
		t.Errorf("final line %q", lines[1])
	}
}

func TestCountAndDuration(t *testing.T) {
	for v, want := range map[float64]string{950: "950", 12400: "12.4k", 3.1e6: "3.10M", 7.22e9: "7.22G", 2.5: "2.5"} {
		if got := Count(v); got != want {
			t.Errorf("Count(%v) = %q, want %q", v, got, want)
		}
	}
	for d, want := range map[time.Duration]string{850 * time.Millisecond: "850ms", 42 * time.Second: "42s", 187 * time.Second: "3m07s", 62 * time.Minute: "1h02m"} {
		if got := Duration(d); got != want {
			t.Errorf("Duration(%v) = %q, want %q", d, got, want)
		}
	}
}
