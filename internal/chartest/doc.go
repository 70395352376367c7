// Package chartest holds the tests of the Helm chart (deploy/helm/vipd) and
// the kustomize bases (deploy/kustomize): lint, golden renders, schema
// rejection, strict decoding with the Kubernetes API types, the pod spec
// every shape must keep, the rendered vipd config validated by the config
// package, and a server-side dry-run against a real kube-apiserver. It has
// no code of its own.
package chartest
