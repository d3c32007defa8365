package cluster

import (
	"context"
	"encoding/json"
	"fmt"
	"strings"
	"testing"
	"time"

	corev1 "k8s.io/api/core/v1"
	metav1 "k8s.io/apimachinery/pkg/apis/meta/v1"

	"github.com/tokensmith/tokensmith/internal/credstore"
)

// saclientImage is test/cluster/saclient, built and imported by TestMain.
const saclientImage = "tokensmith-saclient:" + imageTag

// checkServiceAccountClient runs a pod with no Secret mounted, only a
// projected ServiceAccount token of the sample ServiceAccount "reports"
// (audience: the issuer, the default): it gets an access token from the token
// Service with golang.org/x/oauth2/clientcredentials and verifies it with the
// JWKS (test/cluster/saclient). The sample OAuthClient "reports" has no secret:
// its consumer Secret holds only CLIENT_ID and TOKEN_URL.
func checkServiceAccountClient(ctx context.Context, t *testing.T, k kube, svc *tokenService) {
	t.Helper()
	consumer, err := k.cs.CoreV1().Secrets(appNamespace).Get(ctx, "reports-credentials", metav1.GetOptions{})
	if err != nil {
		t.Fatal(err)
	}
	var keys []string
	for key := range consumer.Data {
		keys = append(keys, key)
	}
	if len(keys) != 2 || consumer.Data[credstore.KeyClientID] == nil || consumer.Data[credstore.KeyTokenURL] == nil {
		t.Errorf("the consumer Secret of a client without a secret holds %v, want CLIENT_ID and TOKEN_URL", keys)
	}

	issuer := "http://" + release + "." + namespace + ".svc"
	const mount = "/var/run/secrets/tokensmith"
	pod := &corev1.Pod{
		ObjectMeta: metav1.ObjectMeta{Name: "reports", Namespace: appNamespace},
		Spec: corev1.PodSpec{
			ServiceAccountName:           "reports",
			AutomountServiceAccountToken: ptr(false),
			RestartPolicy:                corev1.RestartPolicyNever,
			SecurityContext: &corev1.PodSecurityContext{
				RunAsNonRoot: ptr(true), SeccompProfile: &corev1.SeccompProfile{Type: corev1.SeccompProfileTypeRuntimeDefault},
			},
			Containers: []corev1.Container{{
				Name: "reports", Image: saclientImage, ImagePullPolicy: corev1.PullNever,
				Env: []corev1.EnvVar{
					// The one-node cluster runs no DNS: the Service's ClusterIP stands for its name.
					{Name: "TOKEN_URL", Value: svc.base + "/oauth/token"},
					{Name: "ISSUER", Value: issuer},
					{Name: "SA_TOKEN_FILE", Value: mount + "/token"},
					{Name: "SCOPE", Value: "reports:read"},
				},
				VolumeMounts: []corev1.VolumeMount{{Name: "tokensmith-token", MountPath: mount, ReadOnly: true}},
				SecurityContext: &corev1.SecurityContext{
					AllowPrivilegeEscalation: ptr(false), ReadOnlyRootFilesystem: ptr(true),
					Capabilities: &corev1.Capabilities{Drop: []corev1.Capability{"ALL"}},
				},
			}},
			Volumes: []corev1.Volume{{Name: "tokensmith-token", VolumeSource: corev1.VolumeSource{Projected: &corev1.ProjectedVolumeSource{
				Sources: []corev1.VolumeProjection{{ServiceAccountToken: &corev1.ServiceAccountTokenProjection{
					Audience: issuer, ExpirationSeconds: ptr(int64(600)), Path: "token",
				}}},
			}}}},
		},
	}
	created, err := k.cs.CoreV1().Pods(appNamespace).Create(ctx, pod, metav1.CreateOptions{})
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() {
		_ = k.cs.CoreV1().Pods(appNamespace).Delete(context.Background(), "reports", metav1.DeleteOptions{GracePeriodSeconds: ptr(int64(0))})
	})
	// What admission left of the pod: no Secret anywhere, one projected token.
	for _, v := range created.Spec.Volumes {
		if v.Secret != nil || v.Projected != nil && hasSecretSource(v.Projected) {
			t.Fatalf("the pod mounts a Secret: volume %s", v.Name)
		}
	}
	for _, c := range created.Spec.Containers {
		for _, e := range c.Env {
			if e.ValueFrom != nil && e.ValueFrom.SecretKeyRef != nil {
				t.Fatalf("the pod reads a Secret: env %s", e.Name)
			}
		}
	}

	deadline := time.Now().Add(2 * time.Minute)
	var phase corev1.PodPhase
	for time.Now().Before(deadline) {
		p, err := k.cs.CoreV1().Pods(appNamespace).Get(ctx, "reports", metav1.GetOptions{})
		if err != nil {
			t.Fatal(err)
		}
		if phase = p.Status.Phase; phase == corev1.PodSucceeded || phase == corev1.PodFailed {
			break
		}
		time.Sleep(500 * time.Millisecond)
	}
	logs, err := k.cs.CoreV1().Pods(appNamespace).GetLogs("reports", &corev1.PodLogOptions{}).DoRaw(ctx)
	if phase != corev1.PodSucceeded {
		t.Fatalf("the pod ended %q (logs: %s, %v)", phase, logs, err)
	}
	var out map[string]any
	if err := json.Unmarshal([]byte(strings.TrimSpace(string(logs))), &out); err != nil {
		t.Fatalf("the pod's output %q: %v", logs, err)
	}
	if out["verified"] != true || out["client_id"] != string(consumer.Data[credstore.KeyClientID]) || out["scope"] != "reports:read" {
		t.Fatalf("the pod's output: %v", out)
	}
	t.Logf("a pod with only a projected ServiceAccount token got and verified an access token: %s", fmt.Sprint(out))
}

func hasSecretSource(p *corev1.ProjectedVolumeSource) bool {
	for _, s := range p.Sources {
		if s.Secret != nil {
			return true
		}
	}
	return false
}
