package quant

import (
	"context"
	"runtime"
	"sync"
)

// forEach calls fn(i) for every i in [0, n) on up to workers goroutines
// (GOMAXPROCS when workers <= 0) and returns each call's error by index.
// It stops handing out indices once ctx is done and then returns ctx's
// error (the calls already started finish first).
func forEach(ctx context.Context, n, workers int, fn func(i int) error) ([]error, error) {
	if workers <= 0 {
		workers = runtime.GOMAXPROCS(0)
	}
	errs := make([]error, n)
	next := make(chan int)
	var wg sync.WaitGroup
	for range min(workers, max(n, 1)) {
		wg.Add(1)
		go func() {
			defer wg.Done()
			for i := range next {
				errs[i] = fn(i)
			}
		}()
	}
	var ctxErr error
	for i := range n {
		if ctxErr = ctx.Err(); ctxErr != nil {
			break
		}
		next <- i
	}
	close(next)
	wg.Wait()
	return errs, ctxErr
}
