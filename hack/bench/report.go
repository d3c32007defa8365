package main

import (
	"encoding/json"
	"fmt"
	"maps"
	"os"
	"path/filepath"
	"slices"
	"strings"
)

func writeReport(rep *report, dir string) error {
	var base float64
	for _, r := range rep.Endpoints {
		if strings.HasPrefix(r.Name, "baseline") && r.TargetRPS == 0 && base == 0 {
			base = r.RPS
		}
	}
	var splitBase float64
	for _, r := range rep.Endpoints {
		if strings.HasPrefix(r.Name, "split") && strings.Contains(r.Name, "baseline") && r.TargetRPS == 0 {
			splitBase = r.RPS
		}
	}
	for i := range rep.Endpoints {
		b := base
		if strings.HasPrefix(rep.Endpoints[i].Name, "split") {
			b = splitBase // split rows compare with the split baseline
		}
		if b > 0 && rep.Endpoints[i].TargetRPS == 0 {
			rep.Endpoints[i].Ratio = rep.Endpoints[i].RPS / b
		}
	}
	md := markdown(rep, base)
	fmt.Println(md)
	if err := os.MkdirAll(dir, 0o755); err != nil {
		return err
	}
	j, err := json.MarshalIndent(rep, "", "  ")
	if err != nil {
		return err
	}
	if err := os.WriteFile(filepath.Join(dir, "latest.json"), append(j, '\n'), 0o644); err != nil {
		return err
	}
	return os.WriteFile(filepath.Join(dir, "latest.md"), []byte(md), 0o644)
}

func markdown(rep *report, base float64) string {
	var b strings.Builder
	fmt.Fprintf(&b, "# tokensmith bench %s\n\n", rep.Date)
	fmt.Fprintf(&b, "%s, GOMAXPROCS=%d (NumCPU %d), %d client + %d user verifiers, %d workers, %s per endpoint, load generator and servers in one process.\n\n",
		rep.GoVersion, rep.GOMAXPROCS, rep.NumCPU, rep.Clients, rep.Users, rep.Concurrency, rep.Duration)
	b.WriteString("| endpoint | req/s | ratio to baseline | p50 ms | p99 ms | p99.9 ms | errors | GC CPU |\n|---|---:|---:|---:|---:|---:|---:|---:|\n")
	for _, r := range rep.Endpoints {
		ratio := fmt.Sprintf("%.3f", r.Ratio)
		name := r.Name
		if r.TargetRPS > 0 {
			ratio = fmt.Sprintf("open loop at %.0f/s", r.TargetRPS)
		}
		if strings.Contains(r.Name, "argon2id") && rep.Argon2PerS > 0 {
			ratio += fmt.Sprintf(" (%.2f of raw argon2id)", r.RPS/rep.Argon2PerS)
		}
		fmt.Fprintf(&b, "| %s | %.0f | %s | %s | %s | %s | %d | %.0f%% |\n", name, r.RPS, ratio, fmtMS(r.P50ms), fmtMS(r.P99ms), fmtMS(r.P999ms), r.Errors, 100*r.GCShare)
	}
	for _, r := range rep.Endpoints {
		if r.TargetRPS > 0 && r.Note != "" {
			fmt.Fprintf(&b, "\n- %s: %s", r.Name, r.Note)
		}
	}
	if rep.CPU != nil {
		cpuMarkdown(&b, rep.CPU)
	}
	b.WriteString("\n\n| figure | value |\n|---|---|\n")
	if rep.Argon2PerS > 0 {
		fmt.Fprintf(&b, "| raw argon2id verifications/s (m=19 MiB, t=2, p=1; %d goroutines) | %.1f |\n", rep.GOMAXPROCS, rep.Argon2PerS)
	}
	how := "straight into etcd, 100 to a transaction"
	if fixturesViaAPI {
		how = "through kube-apiserver, 32 parallel creates"
	}
	fmt.Fprintf(&b, "| writing %d verifier Secrets (%s) | %.1f s |\n", rep.Clients+rep.Users, how, rep.FixturesSec)
	fmt.Fprintf(&b, "| token server start to /readyz (list + index build) | %.2f s |\n", rep.SyncSec)
	if m := rep.Memory; m != nil {
		fmt.Fprintf(&b, "| token server heap with %d clients + %d users (delta after GC) | %.1f MiB |\n", rep.Clients, rep.Users, m.ServerHeapMiB)
		fmt.Fprintf(&b, "| bench process heap / RSS (server + load generator + clients) | %.1f MiB / %.1f MiB |\n", m.HeapLoadedMiB, m.ProcessRSSMiB)
	}
	if c := rep.Controller; c != nil {
		fmt.Fprintf(&b, "| controller start with %d+%d verifiers present: initial reconciles / time to drain | %.0f / %.2f s |\n", rep.Clients, rep.Users, c.StartupReconciles, c.StartupSeconds)
		fmt.Fprintf(&b, "| %d OAuthClients applied → all Ready with Secrets | %.2f s |\n", c.Clients, c.ReadySeconds)
		fmt.Fprintf(&b, "| apply phase: oauthclient reconciles / summed reconcile time / MaxConcurrentReconciles | %.0f / %.2f s / %.0f |\n", c.ApplyReconciles, c.ApplyReconcileSeconds, c.MaxConcurrent)
		fmt.Fprintf(&b, "| controller: concurrent reconciles / client QPS / burst | %d / %.0f / %d |\n", c.Workers, c.ClientQPS, c.ClientBurst)
		if len(c.ApplyCPU) > 0 {
			var parts []string
			for _, k := range slices.Sorted(maps.Keys(c.ApplyCPU)) {
				parts = append(parts, fmt.Sprintf("%s %.1f s", k, c.ApplyCPU[k]))
			}
			fmt.Fprintf(&b, "| apply phase: CPU time by process (of %.1f core-seconds on %d cores) | %s |\n", c.ReadySeconds*float64(rep.NumCPU), rep.NumCPU, strings.Join(parts, ", "))
		}
		if len(c.ApplyRequests) > 0 && c.Clients > 0 {
			keys := slices.Sorted(maps.Keys(c.ApplyRequests))
			var parts []string
			total := 0
			for _, k := range keys {
				total += c.ApplyRequests[k]
				parts = append(parts, fmt.Sprintf("%s %.2f", k, float64(c.ApplyRequests[k])/float64(c.Clients)))
			}
			fmt.Fprintf(&b, "| apply phase: controller API requests per OAuthClient (%.2f in all) | %s |\n", float64(total)/float64(c.Clients), strings.Join(parts, ", "))
		}
		fmt.Fprintf(&b, "| no-op resync (manager restart, %.0f reconciles): objects written / events | %d / %d |\n", c.ResyncReconciles, c.ResyncWrites, c.ResyncEvents)
		fmt.Fprintf(&b, "| change-to-served (new OAuthClient → token issued), %d samples: p50 / p99 / max | %.0f / %.0f / %.0f ms |\n", c.ServedSamples, c.ServedP50ms, c.ServedP99ms, c.ServedMaxms)
		if c.Note != "" {
			fmt.Fprintf(&b, "| controller note | %s |\n", c.Note)
		}
	}
	if base == 0 {
		b.WriteString("\nNo baseline was measured in this run: ratios are missing.\n")
	}
	if len(rep.Missing) > 0 {
		b.WriteString("\nMissing: " + strings.Join(rep.Missing, "; ") + "\n")
	}
	fmt.Fprintf(&b, "\nTotal run time: %.0f s.\n", rep.TotalSec)
	return b.String()
}

func jsonIndent(v any) ([]byte, error) {
	j, err := json.MarshalIndent(v, "", "  ")
	if err != nil {
		return nil, err
	}
	return append(j, '\n'), nil
}
