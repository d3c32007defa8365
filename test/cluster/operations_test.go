package cluster

import (
	"bytes"
	"context"
	"encoding/json"
	"fmt"
	"net/http"
	"net/url"
	"os"
	"os/exec"
	"path/filepath"
	"slices"
	"strings"
	"testing"
	"time"

	"helm.sh/helm/v3/pkg/action"
	"helm.sh/helm/v3/pkg/chart"
	"helm.sh/helm/v3/pkg/chart/loader"
	corev1 "k8s.io/api/core/v1"
	apiextensionsv1 "k8s.io/apiextensions-apiserver/pkg/apis/apiextensions/v1"
	apiextensions "k8s.io/apiextensions-apiserver/pkg/client/clientset/clientset"
	"k8s.io/apimachinery/pkg/api/equality"
	apierrors "k8s.io/apimachinery/pkg/api/errors"
	metav1 "k8s.io/apimachinery/pkg/apis/meta/v1"
	"k8s.io/apimachinery/pkg/types"
	utilyaml "k8s.io/apimachinery/pkg/util/yaml"

	authv1alpha1 "github.com/tokensmith/tokensmith/api/v1alpha1"
	"github.com/tokensmith/tokensmith/internal/ociimage"
)

// previousRelease is the commit the upgrade scenario starts from: main's HEAD
// when the operations work began (the last commit without the drain on
// SIGTERM and the preStop sleep). Its chart and binary are built from git
// history by the test.
const previousRelease = "53ccbb6aa62c9b53b927b8ce5f8acd0519e49e67"

const (
	// loadRate is the steady load of the strict generator, requests/s; each
	// worker paces itself, so a slow answer delays only its own next request.
	loadRate    = 240
	loadWorkers = 24
)

// opsValues are the chart values of the operations scenarios: device login on
// (it names the samples' device-login client) and no per-address throttling,
// since the whole load comes from one address.
func opsValues(repo, tag string, podAnnotations map[string]any) map[string]any {
	server := map[string]any{
		"deviceLoginClient": "device-login",
		"rateLimit":         map[string]any{"perIP": 0, "perIPBurst": 1, "perClient": 0, "perClientBurst": 1},
	}
	if podAnnotations != nil {
		server["podAnnotations"] = podAnnotations
	}
	return map[string]any{"image": map[string]any{"repository": repo, "tag": tag}, "server": server}
}

// TestOperationsUnderLoad runs issue 17's scenarios one after the other on
// one installation, with token requests flowing through the Service the
// whole time: an upgrade from the previous release, a rolling upgrade, the
// API server restarted, server pods killed, the controller leader deleted.
// Each logs its figures as "FIGURES" lines (docs/operations.md).
func TestOperationsUnderLoad(t *testing.T) {
	ctx, k, cfg := startOnNode(t, 20*time.Minute)
	var (
		svc   *tokenService
		creds credentials
	)
	startLoad := func(rate, workers int, retry bool) *loadGen {
		g := newLoadGen(svc, creds, rate, workers, retry)
		g.start(ctx)
		return g
	}

	steps := []struct {
		name string
		fn   func(t *testing.T)
	}{
		{"4. upgrade from the previous release: credentials, tokens and CRDs kept", func(t *testing.T) {
			prevChart := buildPreviousRelease(ctx, t)
			install := action.NewInstall(cfg)
			install.ReleaseName, install.Namespace = release, namespace
			if _, err := install.RunWithContext(ctx, prevChart, opsValues(imageRepository, "previous", nil)); err != nil {
				t.Fatalf("helm install of %s: %v", previousRelease[:12], err)
			}
			waitDeploymentsAvailable(ctx, t, k)
			// The helm test before this one leaves the ServiceAccount sample
			// "reports" behind (uninstall keeps clients). The previous
			// release's controller ignores spec.authenticationMethods and
			// would give that secretless client a secret, which the current
			// one removes again: a downgrade's effect, not the upgrade's.
			// Start from a state the previous release could have made.
			removeClient(ctx, t, k, "reports")
			// The previous release predates ServiceAccount clients: its CRD refuses the sample's fields.
			applySamples(ctx, t, k, "service_account_client.yaml")
			legacy := applyClient(ctx, t, k, "legacy-billing", nil)
			waitSamplesReady(ctx, t, k, 2*time.Minute)
			waitClientsReady(ctx, t, k, []string{legacy}, time.Minute)
			svc = newTokenService(ctx, t, k)
			creds = readCredentials(ctx, t, k)
			issued := svc.issueEveryDialect(t, creds, true)
			legacyCreds := clientCredentials(ctx, t, k, legacy)
			legacyToken := svc.v1Token(t, legacyCreds)
			waitDeviceKnown(ctx, t, k, "cluster-test")
			crdsBefore := crdUIDs(ctx, t, k)
			before := secretData(ctx, t, k)

			load := startLoad(loadRate, loadWorkers, false)
			start := time.Now()
			upgrade := action.NewUpgrade(cfg)
			upgrade.Namespace = namespace
			if _, err := upgrade.RunWithContext(ctx, release, loadChart(t), opsValues(imageRepository, imageTag, nil)); err != nil {
				load.stop()
				t.Fatalf("helm upgrade to the current tree: %v", err)
			}
			waitDeploymentsAvailable(ctx, t, k)
			end := time.Now()
			time.Sleep(2 * time.Second)
			load.stop()
			w := load.window("upgrade from "+previousRelease[:12]+" (old pods: no drain)", start, end.Add(2*time.Second))
			report(t, w)
			t.Logf("upgrade from the previous release took %s", end.Sub(start).Round(time.Second))

			if diffs := diffSecrets(before, secretData(ctx, t, k)); len(diffs) > 0 {
				t.Fatalf("the upgrade changed Secrets: %s", strings.Join(diffs, "; "))
			}
			checkCRDsUpgradedInPlace(ctx, t, k, crdsBefore)
			svc.checkStillActive(t, creds, issued)
			svc.checkActive(t, creds, "legacy v1 opaque", legacyToken)
			svc.v1Token(t, legacyCreds)
			svc.issueEveryDialect(t, readCredentials(ctx, t, k), true)
		}},
		{"1. rolling upgrade of the server pods: zero failed requests", func(t *testing.T) {
			load := startLoad(loadRate, loadWorkers, false)
			quietStart := time.Now()
			time.Sleep(15 * time.Second)
			start := time.Now()
			upgrade := action.NewUpgrade(cfg)
			upgrade.Namespace = namespace
			vals := opsValues(imageRepository, imageTag, map[string]any{"tokensmith.io/rollout": start.UTC().Format(time.RFC3339)})
			if _, err := upgrade.RunWithContext(ctx, release, loadChart(t), vals); err != nil {
				load.stop()
				t.Fatalf("helm upgrade: %v", err)
			}
			waitRolledOut(ctx, t, k, start)
			end := time.Now()
			time.Sleep(3 * time.Second)
			load.stop()
			quiet := load.window("quiet period before the rollout", quietStart, start)
			during := load.window("rolling upgrade (2 replicas, maxSurge 1, PDB)", start, end.Add(3*time.Second))
			report(t, quiet)
			report(t, during)
			t.Logf("the rollout took %s", end.Sub(start).Round(time.Second))
			if quiet.rate() < 150 || during.rate() < 150 {
				t.Fatalf("the load generator did not keep its rate: %d and %d requests", quiet.sent, during.sent)
			}
			if quiet.failed+during.failed > 0 {
				t.Fatalf("requests failed: %s / %s", quiet, during)
			}
		}},
		{"5. kube-apiserver restarted while the server pods run: issuance continues", func(t *testing.T) {
			load := startLoad(loadRate, loadWorkers, false)
			time.Sleep(3 * time.Second)
			start := time.Now()
			if err := cluster.StopAPIServer(); err != nil {
				load.stop()
				t.Fatal(err)
			}
			time.Sleep(15 * time.Second)
			restart := time.Now()
			if err := cluster.StartAPIServer(ctx); err != nil {
				load.stop()
				t.Fatal(err)
			}
			ready := time.Now()
			time.Sleep(5 * time.Second)
			load.stop()
			w := load.window("kube-apiserver down 15s, then restarted", start, time.Now())
			report(t, w)
			t.Logf("kube-apiserver: stopped %s, ready again %s after its restart", restart.Sub(start).Round(time.Second), ready.Sub(restart).Round(100*time.Millisecond))
			if w.failed > 0 {
				t.Fatalf("requests failed while the API server was away: %s", w)
			}
			// The watches came back: a client created now is served.
			name := applyClient(ctx, t, k, "after-apiserver-restart", nil)
			waitClientsReady(ctx, t, k, []string{name}, 2*time.Minute)
			c := clientCredentials(ctx, t, k, name)
			deadline := time.Now().Add(30 * time.Second)
			for !svc.tryV1Token(c) {
				if time.Now().After(deadline) {
					t.Fatal("a client created after the API server's restart is not served within 30s")
				}
				time.Sleep(200 * time.Millisecond)
			}
		}},
		{"2. a server pod force-deleted, and a server container killed: bounded failures, none with a client retry", func(t *testing.T) {
			for _, kill := range []struct {
				name string
				do   func(t *testing.T, p *corev1.Pod)
			}{
				{"pod force-deleted (--grace-period=0 --force)", func(t *testing.T, p *corev1.Pod) {
					if err := k.cs.CoreV1().Pods(namespace).Delete(ctx, p.Name, metav1.DeleteOptions{GracePeriodSeconds: ptr(int64(0))}); err != nil {
						t.Fatal(err)
					}
				}},
				{"server container SIGKILLed", func(t *testing.T, p *corev1.Pod) {
					for _, cs := range p.Status.ContainerStatuses {
						if cs.Name == "server" {
							if err := cluster.KillContainer(strings.TrimPrefix(cs.ContainerID, "containerd://")); err != nil {
								t.Fatal(err)
							}
							return
						}
					}
					t.Fatalf("pod %s has no server container status", p.Name)
				}},
			} {
				strict := startLoad(loadRate*3/4, loadWorkers*3/4, false)
				retrying := startLoad(loadRate/4, loadWorkers/4, true)
				time.Sleep(5 * time.Second)
				victim := serverPods(ctx, t, k)[0]
				start := time.Now()
				kill.do(t, &victim)
				gone := waitEndpointGone(ctx, t, k, victim.Status.PodIP, start)
				waitDeploymentsAvailable(ctx, t, k)
				waitAllServerEndpointsReady(ctx, t, k)
				end := time.Now()
				time.Sleep(5 * time.Second)
				strict.stop()
				retrying.stop()
				ws := strict.window(kill.name+", no retry", start.Add(-time.Second), end.Add(5*time.Second))
				wr := retrying.window(kill.name+", clients retry connection failures", start.Add(-time.Second), end.Add(5*time.Second))
				report(t, ws)
				report(t, wr)
				lastFailure, last := time.Duration(0), "no failed request"
				if ws.failed > 0 {
					lastFailure = ws.lastF.Sub(start)
					last = fmt.Sprintf("last failed request started %s after the kill", lastFailure.Round(100*time.Millisecond))
				}
				t.Logf("FIGURES %s: endpoint out of the Service after %s; %s; back to 2 ready endpoints after %s",
					kill.name, gone.Round(100*time.Millisecond), last, end.Sub(start).Round(time.Second))
				if wr.failed > 0 {
					t.Errorf("%s: a client that retries connection failures still failed: %s", kill.name, wr)
				}
				// A regression that keeps a dead pod in the Service, or fails
				// requests on the surviving one, shows here.
				if ws.failed > ws.sent/10 || lastFailure > 10*time.Second {
					t.Errorf("%s: more failures than a dead pod explains: %s (last %s after the kill)", kill.name, ws, lastFailure)
				}
			}
		}},
		{"3. the controller leader deleted while OAuthClients are applied: takeover, all Ready, no credential change", func(t *testing.T) {
			before := secretData(ctx, t, k)
			leader := leaderPod(ctx, t, k)
			load := startLoad(loadRate, loadWorkers, false)
			applied := make(chan []string, 1)
			go func() {
				var names []string
				for i := 0; i < 30; i++ {
					names = append(names, applyClient(ctx, t, k, fmt.Sprintf("during-leader-loss-%02d", i), nil))
					time.Sleep(400 * time.Millisecond)
				}
				applied <- names
			}()
			time.Sleep(2 * time.Second)
			start := time.Now()
			if err := k.cs.CoreV1().Pods(namespace).Delete(ctx, leader, metav1.DeleteOptions{}); err != nil {
				t.Fatal(err)
			}
			newLeader, took := waitNewLeader(ctx, t, k, leader, start)
			names := <-applied
			waitClientsReady(ctx, t, k, names, 2*time.Minute)
			readyAfter := time.Since(start)
			load.stop()
			w := load.window("controller leader deleted while 30 OAuthClients are applied", start, time.Now())
			report(t, w)
			t.Logf("FIGURES leader %s deleted: %s holds the Lease after %s; all 30 OAuthClients Ready %s after the deletion",
				leader, newLeader, took.Round(100*time.Millisecond), readyAfter.Round(100*time.Millisecond))
			if w.failed > 0 {
				t.Errorf("token requests failed while the controller changed leader: %s", w)
			}
			// The Lease: 15s duration (controller-runtime's default), released on
			// a graceful stop, so the other replica takes over within one retry period.
			if took > 20*time.Second {
				t.Errorf("the new leader took %s, longer than the Lease duration allows", took)
			}
			if diffs := diffSecrets(before, secretData(ctx, t, k)); len(diffs) > 0 {
				t.Fatalf("credentials changed across the leader change: %s", strings.Join(diffs, "; "))
			}
			first := map[string]credentials{}
			for _, n := range names {
				first[n] = clientCredentials(ctx, t, k, n)
				if !svc.tryV1Token(first[n]) {
					t.Errorf("OAuthClient %s applied during the leader change is Ready but not served", n)
				}
			}
			time.Sleep(3 * time.Second)
			for _, n := range names {
				if clientCredentials(ctx, t, k, n) != first[n] {
					t.Errorf("OAuthClient %s's credentials changed after it became Ready", n)
				}
			}
		}},
	}
	for _, s := range steps {
		if !t.Run(s.name, s.fn) {
			return
		}
	}
}

// buildPreviousRelease extracts previousRelease from git history, builds its
// binary into an image tagged "previous" in the node's containerd, and loads
// its chart.
func buildPreviousRelease(ctx context.Context, t *testing.T) *chart.Chart {
	t.Helper()
	dir := t.TempDir()
	src := filepath.Join(dir, "src")
	if err := os.MkdirAll(src, 0o755); err != nil {
		t.Fatal(err)
	}
	archive := exec.CommandContext(ctx, "sh", "-c", fmt.Sprintf("git -C %q archive %s | tar -x -C %q", repoRoot, previousRelease, src))
	if out, err := archive.CombinedOutput(); err != nil {
		t.Fatalf("git archive %s (the previous release must be in this checkout's history): %v: %s", previousRelease, err, out)
	}
	bin := filepath.Join(dir, "tokensmith")
	build := exec.CommandContext(ctx, "go", "build", "-trimpath", "-ldflags=-s -w", "-o", bin, ".")
	build.Dir = src
	build.Env = append(os.Environ(), "CGO_ENABLED=0")
	if out, err := build.CombinedOutput(); err != nil {
		t.Fatalf("building %s: %v: %s", previousRelease, err, out)
	}
	img, err := ociimage.Build(ociimage.Tokensmith(bin, ociimage.Labels("previous", previousRelease)))
	if err != nil {
		t.Fatal(err)
	}
	tarball := filepath.Join(dir, "previous.tar")
	if err := ociimage.WriteTarball(tarball, imageRepository+":previous", img); err != nil {
		t.Fatal(err)
	}
	if err := cluster.ImportImage(ctx, tarball); err != nil {
		t.Fatal(err)
	}
	ch, err := loader.Load(filepath.Join(src, "charts", "tokensmith"))
	if err != nil {
		t.Fatal(err)
	}
	return ch
}

// applyClient creates (or keeps) a client_credentials OAuthClient with an
// opaque token format in the app namespace and returns its name.
func applyClient(ctx context.Context, t *testing.T, k kube, name string, mutate func(*authv1alpha1.OAuthClient)) string {
	t.Helper()
	o := &authv1alpha1.OAuthClient{ObjectMeta: metav1.ObjectMeta{Name: name, Namespace: appNamespace},
		Spec: authv1alpha1.OAuthClientSpec{GrantTypes: []authv1alpha1.GrantType{authv1alpha1.GrantClientCredentials}, Scopes: []string{"invoices:read"}, TokenFormat: authv1alpha1.TokenFormatOpaque}}
	if mutate != nil {
		mutate(o)
	}
	if err := k.c.Create(ctx, o); err != nil && !strings.Contains(err.Error(), "already exists") {
		t.Errorf("create OAuthClient %s: %v", name, err)
	}
	return name
}

// removeClient deletes the OAuthClient name in appNamespace, if present, and
// waits until it and its consumer Secret are gone (the running controller
// finalizes it; the garbage collector removes the Secret it owns).
func removeClient(ctx context.Context, t *testing.T, k kube, name string) {
	t.Helper()
	oc := &authv1alpha1.OAuthClient{}
	oc.Namespace, oc.Name = appNamespace, name
	if err := k.c.Delete(ctx, oc); err != nil && !apierrors.IsNotFound(err) {
		t.Fatalf("deleting OAuthClient %s: %v", name, err)
	}
	deadline := time.Now().Add(time.Minute)
	for {
		clientErr := k.c.Get(ctx, types.NamespacedName{Namespace: appNamespace, Name: name}, &authv1alpha1.OAuthClient{})
		secretErr := k.c.Get(ctx, types.NamespacedName{Namespace: appNamespace, Name: name + "-credentials"}, &corev1.Secret{})
		if apierrors.IsNotFound(clientErr) && apierrors.IsNotFound(secretErr) {
			return
		}
		if time.Now().After(deadline) {
			t.Fatalf("OAuthClient %s (%v) or its consumer Secret (%v) still there a minute after deletion", name, clientErr, secretErr)
		}
		time.Sleep(200 * time.Millisecond)
	}
}

func waitClientsReady(ctx context.Context, t *testing.T, k kube, names []string, timeout time.Duration) {
	t.Helper()
	deadline := time.Now().Add(timeout)
	for {
		var pending []string
		for _, n := range names {
			var o authv1alpha1.OAuthClient
			if err := k.c.Get(ctx, clientKey(n), &o); err != nil || !ready(o.Status.Conditions) {
				pending = append(pending, n+": "+reason(o.Status.Conditions))
			}
		}
		if len(pending) == 0 {
			return
		}
		if time.Now().After(deadline) {
			t.Fatalf("OAuthClients not Ready within %s: %s", timeout, strings.Join(pending, "; "))
		}
		time.Sleep(500 * time.Millisecond)
	}
}

// clientCredentials reads an OAuthClient's consumer Secret into the v1
// fields of credentials.
func clientCredentials(ctx context.Context, t *testing.T, k kube, name string) credentials {
	t.Helper()
	s, err := k.cs.CoreV1().Secrets(appNamespace).Get(ctx, name+"-credentials", metav1.GetOptions{})
	if err != nil {
		t.Fatal(err)
	}
	return credentials{v1ID: string(s.Data["CLIENT_ID"]), v1Secret: string(s.Data["CLIENT_SECRET"])}
}

func (s *tokenService) tryV1Token(c credentials) bool {
	resp, err := s.hc.Post(s.base+"/v1/auth/token", "application/x-www-form-urlencoded",
		strings.NewReader(url.Values{"client_id": {c.v1ID}, "client_secret": {c.v1Secret}}.Encode()))
	if err != nil {
		return false
	}
	resp.Body.Close()
	return resp.StatusCode == http.StatusOK
}

func (s *tokenService) v1Token(t *testing.T, c credentials) string {
	t.Helper()
	code, body := s.post(t, "/v1/auth/token", "application/x-www-form-urlencoded", url.Values{"client_id": {c.v1ID}, "client_secret": {c.v1Secret}}.Encode(), nil)
	data, _ := body["data"].(map[string]any)
	tok := str(data, "access_token")
	if code != http.StatusOK || !strings.HasPrefix(tok, "sk-") {
		t.Fatalf("client-credentials v1: %d %v", code, keys(body))
	}
	return tok
}

func (s *tokenService) checkActive(t *testing.T, c credentials, name, tok string) {
	t.Helper()
	basic := http.Header{"Authorization": {"Basic " + basicAuth(c.mobileID, c.mobileSecret)}}
	code, body := s.post(t, "/oauth/introspect", "application/x-www-form-urlencoded", url.Values{"token": {tok}}.Encode(), basic)
	if code != http.StatusOK || body["active"] != true {
		t.Errorf("%s token issued before the upgrade: %d active=%v", name, code, body["active"])
	}
}

// waitDeviceKnown waits until the controller has mirrored a device login into
// alice's verifier (knownDevices), a change that follows a first login by
// about a second and would otherwise land in the middle of a comparison.
func waitDeviceKnown(ctx context.Context, t *testing.T, k kube, device string) {
	t.Helper()
	deadline := time.Now().Add(time.Minute)
	for time.Now().Before(deadline) {
		list, err := k.cs.CoreV1().Secrets(namespace).List(ctx, metav1.ListOptions{})
		if err != nil {
			t.Fatal(err)
		}
		for _, s := range list.Items {
			if !strings.HasPrefix(s.Name, "user-"+appNamespace+"-alice-") {
				continue
			}
			var v struct {
				KnownDevices []string `json:"knownDevices"`
			}
			for _, data := range s.Data {
				if json.Unmarshal(data, &v) == nil && slices.Contains(v.KnownDevices, device) {
					return
				}
			}
		}
		time.Sleep(250 * time.Millisecond)
	}
	t.Fatalf("alice's verifier does not list device %q after a minute", device)
}

func crdUIDs(ctx context.Context, t *testing.T, k kube) map[string]types.UID {
	t.Helper()
	uids := map[string]types.UID{}
	for _, n := range []string{"oauthclients.auth.tokensmith.io", "users.auth.tokensmith.io"} {
		crd, err := apiextensions.NewForConfigOrDie(k.cfg).ApiextensionsV1().CustomResourceDefinitions().Get(ctx, n, metav1.GetOptions{})
		if err != nil {
			t.Fatal(err)
		}
		uids[n] = crd.UID
	}
	return uids
}

// checkCRDsUpgradedInPlace: the same CRD objects (not deleted and recreated,
// which would delete every OAuthClient and User), now serving the current
// tree's schemas.
func checkCRDsUpgradedInPlace(ctx context.Context, t *testing.T, k kube, before map[string]types.UID) {
	t.Helper()
	for n, uid := range before {
		crd, err := apiextensions.NewForConfigOrDie(k.cfg).ApiextensionsV1().CustomResourceDefinitions().Get(ctx, n, metav1.GetOptions{})
		if err != nil {
			t.Fatal(err)
		}
		if crd.UID != uid {
			t.Errorf("CRD %s was recreated by the upgrade", n)
		}
		file := filepath.Join(repoRoot, "charts", "tokensmith", "templates", "crds", "auth.tokensmith.io_"+strings.SplitN(n, ".", 2)[0]+".yaml")
		data, err := os.ReadFile(file)
		if err != nil {
			t.Fatal(err)
		}
		var lines []string
		for _, l := range strings.Split(string(data), "\n") {
			if !strings.Contains(l, "{{") {
				lines = append(lines, l)
			}
		}
		var want apiextensionsv1.CustomResourceDefinition
		if err := utilyaml.NewYAMLOrJSONDecoder(bytes.NewReader([]byte(strings.Join(lines, "\n"))), 4096).Decode(&want); err != nil {
			t.Fatalf("%s: %v", file, err)
		}
		if len(crd.Spec.Versions) != len(want.Spec.Versions) {
			t.Fatalf("CRD %s serves %d versions, the chart has %d", n, len(crd.Spec.Versions), len(want.Spec.Versions))
		}
		for i := range want.Spec.Versions {
			if !equality.Semantic.DeepEqual(crd.Spec.Versions[i].Schema, want.Spec.Versions[i].Schema) {
				t.Errorf("CRD %s version %s: the cluster's schema is not the current chart's", n, want.Spec.Versions[i].Name)
			}
		}
	}
	var clients authv1alpha1.OAuthClientList
	if err := k.c.List(ctx, &clients); err != nil || len(clients.Items) == 0 {
		t.Fatalf("OAuthClients after the CRD upgrade: %d, %v", len(clients.Items), err)
	}
}

func serverPods(ctx context.Context, t *testing.T, k kube) []corev1.Pod {
	t.Helper()
	pods, err := k.cs.CoreV1().Pods(namespace).List(ctx, metav1.ListOptions{LabelSelector: "app.kubernetes.io/component=server"})
	if err != nil {
		t.Fatal(err)
	}
	var ready []corev1.Pod
	for _, p := range pods.Items {
		if p.DeletionTimestamp == nil && podReady(&p) {
			ready = append(ready, p)
		}
	}
	if len(ready) < 2 {
		t.Fatalf("%d ready server pods, want 2", len(ready))
	}
	return ready
}

// readyEndpoints lists the addresses the token Service sends new connections to.
func readyEndpoints(ctx context.Context, k kube) (map[string]bool, error) {
	slices, err := k.cs.DiscoveryV1().EndpointSlices(namespace).List(ctx, metav1.ListOptions{LabelSelector: "kubernetes.io/service-name=" + release})
	if err != nil {
		return nil, err
	}
	served := map[string]bool{}
	for _, s := range slices.Items {
		for _, e := range s.Endpoints {
			if e.Conditions.Ready != nil && *e.Conditions.Ready {
				for _, a := range e.Addresses {
					served[a] = true
				}
			}
		}
	}
	return served, nil
}

// waitEndpointGone returns how long after start ip stopped being a ready
// endpoint of the token Service.
func waitEndpointGone(ctx context.Context, t *testing.T, k kube, ip string, start time.Time) time.Duration {
	t.Helper()
	for time.Since(start) < time.Minute {
		served, err := readyEndpoints(ctx, k)
		if err == nil && !served[ip] {
			return time.Since(start)
		}
		time.Sleep(50 * time.Millisecond)
	}
	t.Fatalf("%s still a ready endpoint a minute after the kill", ip)
	return 0
}

func waitAllServerEndpointsReady(ctx context.Context, t *testing.T, k kube) {
	t.Helper()
	deadline := time.Now().Add(2 * time.Minute)
	for time.Now().Before(deadline) {
		served, err := readyEndpoints(ctx, k)
		if err == nil && len(served) == 2 {
			return
		}
		time.Sleep(200 * time.Millisecond)
	}
	t.Fatal("the token Service did not get back to 2 ready endpoints")
}

// waitRolledOut waits until the server Deployment's pods are all newer than
// start, Ready, and the old ones gone.
func waitRolledOut(ctx context.Context, t *testing.T, k kube, start time.Time) {
	t.Helper()
	waitDeploymentsAvailable(ctx, t, k)
	pods, err := k.cs.CoreV1().Pods(namespace).List(ctx, metav1.ListOptions{LabelSelector: "app.kubernetes.io/component=server"})
	if err != nil {
		t.Fatal(err)
	}
	for _, p := range pods.Items {
		if p.CreationTimestamp.Time.Before(start.Add(-time.Second)) {
			t.Fatalf("server pod %s predates the upgrade: the pod template did not change", p.Name)
		}
	}
}

func leaderLease(ctx context.Context, t *testing.T, k kube) string {
	t.Helper()
	l, err := k.cs.CoordinationV1().Leases(namespace).Get(ctx, release+"-controller", metav1.GetOptions{})
	if err != nil {
		t.Fatal(err)
	}
	if l.Spec.HolderIdentity == nil {
		return ""
	}
	return strings.SplitN(*l.Spec.HolderIdentity, "_", 2)[0]
}

func leaderPod(ctx context.Context, t *testing.T, k kube) string {
	t.Helper()
	deadline := time.Now().Add(time.Minute)
	for time.Now().Before(deadline) {
		if p := leaderLease(ctx, t, k); p != "" {
			return p
		}
		time.Sleep(time.Second)
	}
	t.Fatal("no controller holds the Lease")
	return ""
}

// waitNewLeader returns the pod holding the Lease once it is not old, and how
// long after start that was.
func waitNewLeader(ctx context.Context, t *testing.T, k kube, old string, start time.Time) (string, time.Duration) {
	t.Helper()
	for time.Since(start) < 2*time.Minute {
		if p := leaderLease(ctx, t, k); p != "" && p != old {
			return p, time.Since(start)
		}
		time.Sleep(100 * time.Millisecond)
	}
	t.Fatal("no other controller took the Lease within 2 minutes")
	return "", 0
}
