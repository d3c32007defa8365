package index

import (
	"strings"

	"github.com/go-logr/logr"
)

func logrDiscard() logr.Logger { return logr.Discard() }

func contains(s, sub string) bool {
	return strings.Contains(s, sub)
}
