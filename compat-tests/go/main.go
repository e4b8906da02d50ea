// The Go client scenarios: franz-go (kgo, kadm) and IBM/sarama against a running broker
// (Gregor, or Apache Kafka to check the scenarios themselves).
//
//	go run . BOOTSTRAP quick|full [NAME...]
//
// Prints `PASS|FAIL|SKIP go NAME SECONDS [# reason]` per scenario and a closing
// `N passed, N failed, N skipped`; exits 1 if any scenario failed.
package main

import (
	"context"
	"crypto/rand"
	"encoding/hex"
	"fmt"
	"os"
	"strconv"
	"strings"
	"time"
)

// scenario is one named check; quick ones also run in `make test`.
type scenario struct {
	name    string
	quick   bool
	timeout time.Duration
	run     func(ctx context.Context, e *env) error
}

// env is what a scenario works with: the bootstrap addresses (comma-separated) and unique
// names.
type env struct {
	bootstrap string
	run       string
}

// brokers is the bootstrap list, one address each.
func (e *env) brokers() []string {
	return strings.Split(e.bootstrap, ",")
}

// expectedBrokers is how many brokers Metadata should list: one, or the cluster run.sh
// started (EXPECTED_BROKERS).
func expectedBrokers() int {
	if n, err := strconv.Atoi(os.Getenv("EXPECTED_BROKERS")); err == nil {
		return n
	}
	return 1
}

// name returns a topic or group name unique to this scenario run.
func (e *env) name(suffix string) string {
	return "go-" + e.run + "-" + suffix
}

func all() []scenario {
	var s []scenario
	s = append(s, franzScenarios()...)
	s = append(s, saramaScenarios()...)
	return s
}

func main() {
	if len(os.Args) < 3 {
		fmt.Fprintln(os.Stderr, "usage: go run . BOOTSTRAP quick|full [NAME...]")
		os.Exit(2)
	}
	bootstrap, mode, only := os.Args[1], os.Args[2], os.Args[3:]
	var selected []scenario
	for _, sc := range all() {
		if len(only) > 0 {
			for _, n := range only {
				if n == sc.name {
					selected = append(selected, sc)
				}
			}
		} else if mode == "full" || sc.quick {
			selected = append(selected, sc)
		}
	}
	if len(only) > 0 && len(selected) != len(only) {
		fmt.Fprintln(os.Stderr, "unknown scenario in", only)
		os.Exit(2)
	}
	passed, failed, skipped := 0, 0, 0
	for _, sc := range selected {
		e := &env{bootstrap: bootstrap, run: strings.ReplaceAll(sc.name, "_", "-") + "-" + randomHex(4)}
		start := time.Now()
		word, reason := runOne(sc, e)
		suffix := ""
		if reason != "" {
			suffix = "  # " + strings.ReplaceAll(reason, "\n", " ")
		}
		fmt.Printf("%s go %s %.1f%s\n", word, sc.name, time.Since(start).Seconds(), suffix)
		switch word {
		case "PASS":
			passed++
		case "SKIP":
			skipped++
		default:
			failed++
		}
	}
	fmt.Printf("%d passed, %d failed, %d skipped\n", passed, failed, skipped)
	if failed > 0 {
		os.Exit(1)
	}
}

// skipError marks a scenario that cannot run here; it is reported as SKIP with the reason.
type skipError struct{ reason string }

func (s skipError) Error() string { return s.reason }

func runOne(sc scenario, e *env) (word, reason string) {
	ctx, cancel := context.WithTimeout(context.Background(), sc.timeout)
	defer cancel()
	done := make(chan error, 1)
	go func() {
		defer func() {
			if r := recover(); r != nil {
				done <- fmt.Errorf("panic: %v", r)
			}
		}()
		done <- sc.run(ctx, e)
	}()
	select {
	case err := <-done:
		if err == nil {
			return "PASS", ""
		}
		if s, ok := err.(skipError); ok {
			return "SKIP", s.reason
		}
		return "FAIL", err.Error()
	case <-ctx.Done():
		return "FAIL", fmt.Sprintf("timeout after %s", sc.timeout)
	}
}

func randomHex(n int) string {
	b := make([]byte, n)
	if _, err := rand.Read(b); err != nil {
		panic(err)
	}
	return hex.EncodeToString(b)
}

// check returns an error describing what did not hold.
func check(ok bool, format string, args ...any) error {
	if ok {
		return nil
	}
	return fmt.Errorf(format, args...)
}

// first returns the first non-nil error.
func first(errs ...error) error {
	for _, err := range errs {
		if err != nil {
			return err
		}
	}
	return nil
}
