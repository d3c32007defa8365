package userstatus

import (
	"context"
	"encoding/json"
	"fmt"
	"time"

	apierrors "k8s.io/apimachinery/pkg/api/errors"
	metav1 "k8s.io/apimachinery/pkg/apis/meta/v1"
	"k8s.io/apimachinery/pkg/types"
	"k8s.io/client-go/dynamic"

	"github.com/tokensmith/tokensmith/server/index"
)

// Lockouts writes status.lockedUntil with a merge patch on users/status,
// which needs only the "patch" verb there (the Helm chart's server RBAC).
type Lockouts struct {
	Client dynamic.Interface
}

// WriteLock records until as the User's status.lockedUntil. A User that no
// longer exists needs no lock.
func (s Lockouts) WriteLock(ctx context.Context, user index.UserRef, until time.Time) error {
	body, err := json.Marshal(map[string]any{"status": map[string]any{"lockedUntil": metav1.NewTime(until.UTC())}})
	if err != nil {
		return err
	}
	_, err = s.Client.Resource(usersResource).Namespace(user.Namespace).
		Patch(ctx, user.Name, types.MergePatchType, body, metav1.PatchOptions{FieldManager: "tokensmith-server"}, "status")
	if err != nil && !apierrors.IsNotFound(err) {
		return fmt.Errorf("patching users/status: %w", err)
	}
	return nil
}
