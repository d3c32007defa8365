package node

import (
	"context"
	"crypto/tls"
	"fmt"
	"net/http"
	"os"
	"path/filepath"
	"sort"
	"strconv"
	"strings"
	"syscall"
	"time"

	corev1 "k8s.io/api/core/v1"
	metav1 "k8s.io/apimachinery/pkg/apis/meta/v1"
	"k8s.io/client-go/kubernetes"
)

func (c *Cluster) waitHTTP(ctx context.Context, name, path string, timeout time.Duration) error {
	hc := &http.Client{
		Timeout: 2 * time.Second,
		Transport: &http.Transport{
			DialContext:     c.DialContext,
			TLSClientConfig: &tls.Config{InsecureSkipVerify: true}, //nolint:gosec // readiness poll only; the clients verify the CA
		},
	}
	deadline := time.Now().Add(timeout)
	for {
		resp, err := hc.Get(fmt.Sprintf("https://%s:%d%s", NodeIP, apiServerPort, path))
		if err == nil {
			resp.Body.Close()
			if resp.StatusCode == http.StatusOK {
				return nil
			}
			err = fmt.Errorf("%s answers %d", path, resp.StatusCode)
		}
		if exitErr := c.exited(name); exitErr != nil {
			return exitErr
		}
		if time.Now().After(deadline) {
			return fmt.Errorf("%s not ready within %s: %w", name, timeout, err)
		}
		select {
		case <-ctx.Done():
			return ctx.Err()
		case <-time.After(250 * time.Millisecond):
		}
	}
}

func (c *Cluster) waitNodeReady(ctx context.Context, timeout time.Duration) error {
	cfg, err := c.RESTConfig()
	if err != nil {
		return err
	}
	cs, err := kubernetes.NewForConfig(cfg)
	if err != nil {
		return err
	}
	deadline := time.Now().Add(timeout)
	last := "not registered"
	for time.Now().Before(deadline) {
		n, err := cs.CoreV1().Nodes().Get(ctx, NodeName, metav1.GetOptions{})
		if err == nil {
			for _, cond := range n.Status.Conditions {
				if cond.Type == corev1.NodeReady {
					if cond.Status == corev1.ConditionTrue {
						return nil
					}
					last = cond.Reason + ": " + cond.Message
				}
			}
		}
		for _, name := range []string{"kubelet", "containerd", "kube-proxy", "kube-scheduler", "kube-controller-manager", "kube-apiserver"} {
			if err := c.exited(name); err != nil {
				return err
			}
		}
		select {
		case <-ctx.Done():
			return ctx.Err()
		case <-time.After(500 * time.Millisecond):
		}
	}
	return fmt.Errorf("node not Ready within %s: %s", timeout, last)
}

// Stop ends everything Start began and removes what it left; it is safe to
// call on a partly started cluster and more than once.
func (c *Cluster) Stop() {
	// Containers first: containerd's shims run in the node's mount namespace,
	// detached from containerd; each container is a child of its shim.
	c.killNamespaceProcesses()
	for i := len(c.procs) - 1; i >= 0; i-- {
		c.procs[i].stop()
	}
	c.procs = nil
	c.killNamespaceProcesses()
	c.removeCgroups()
	if c.mntnsPath != "" {
		// Every process of the mount namespace is gone; dropping its last
		// reference drops every mount made in it (volumes, overlays, netns files).
		_ = run("umount", c.mntnsPath)
		_ = run("umount", filepath.Dir(c.mntnsPath))
	}
	if c.netnsPath != "" {
		if _, err := os.Stat(c.netnsPath); err == nil {
			_ = run("ip", "netns", "delete", c.cfg.Name)
		}
	}
	if c.cfg.Dir != "" {
		_ = os.RemoveAll(c.cfg.Dir)
	}
}

// stop ends the component: SIGTERM, SIGKILL after 10s; it waits until the
// process has exited.
func (p *proc) stop() {
	_ = p.cmd.Process.Signal(syscall.SIGTERM)
	select {
	case <-p.done:
	case <-time.After(10 * time.Second):
		_ = p.cmd.Process.Kill()
		<-p.done
	}
	p.log.Close()
}

// killNamespaceProcesses SIGKILLs every process whose mount namespace is the
// node's, with all their descendants, children first.
func (c *Cluster) killNamespaceProcesses() {
	if c.mntnsPath == "" {
		return
	}
	var st syscall.Stat_t
	if err := syscall.Stat(c.mntnsPath, &st); err != nil || st.Ino == 0 {
		return
	}
	want := fmt.Sprintf("mnt:[%d]", st.Ino)
	self := os.Getpid()
	for round := 0; round < 20; round++ {
		parents := map[int][]int{}
		var roots []int
		entries, _ := os.ReadDir("/proc")
		for _, e := range entries {
			pid, err := strconv.Atoi(e.Name())
			if err != nil || pid == self {
				continue
			}
			if ppid := parentOf(pid); ppid > 0 {
				parents[ppid] = append(parents[ppid], pid)
			}
			if ns, err := os.Readlink(fmt.Sprintf("/proc/%d/ns/mnt", pid)); err == nil && ns == want {
				roots = append(roots, pid)
			}
		}
		if len(roots) == 0 {
			return
		}
		var order []int
		var walk func(int)
		walk = func(pid int) {
			for _, child := range parents[pid] {
				walk(child)
			}
			order = append(order, pid)
		}
		for _, r := range roots {
			walk(r)
		}
		for _, pid := range order {
			_ = syscall.Kill(pid, syscall.SIGKILL)
		}
		time.Sleep(250 * time.Millisecond)
	}
}

func parentOf(pid int) int {
	data, err := os.ReadFile(fmt.Sprintf("/proc/%d/stat", pid))
	if err != nil {
		return 0
	}
	// The command name may hold spaces and parentheses: fields start after the last ')'.
	s := string(data)
	i := strings.LastIndexByte(s, ')')
	if i < 0 {
		return 0
	}
	f := strings.Fields(s[i+1:])
	if len(f) < 2 {
		return 0
	}
	ppid, _ := strconv.Atoi(f[1])
	return ppid
}

// cgroupDirs lists every cgroup directory on the machine.
func cgroupDirs() map[string]bool {
	dirs := map[string]bool{}
	_ = filepath.WalkDir("/sys/fs/cgroup", func(path string, d os.DirEntry, err error) error {
		if err == nil && d.IsDir() {
			dirs[path] = true
		}
		return nil
	})
	return dirs
}

// removeCgroups removes the cgroups that appeared while the cluster ran (the
// containers' and kubelet's), deepest first.
func (c *Cluster) removeCgroups() {
	if c.cgroups == nil {
		return
	}
	var added []string
	for dir := range cgroupDirs() {
		if !c.cgroups[dir] {
			added = append(added, dir)
		}
	}
	sort.Slice(added, func(i, j int) bool { return len(added[i]) > len(added[j]) })
	for _, dir := range added {
		_ = syscall.Rmdir(dir)
	}
}
