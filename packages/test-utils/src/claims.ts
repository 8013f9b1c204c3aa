/**
 * Claim sets shaped like the real platforms' ID tokens, for tests.
 * Sources: GitHub's OIDC docs, Kubernetes projected service-account tokens, Modal's OIDC docs.
 */

export function githubClaims(repo = 'octo-org/octo-repo', overrides: Record<string, unknown> = {}) {
  const [owner] = repo.split('/')
  return {
    sub: `repo:${repo}:ref:refs/heads/main`,
    aud: 'https://hivemind.example.com',
    ref: 'refs/heads/main',
    sha: 'a3f2c1d4e5b6a7980123456789abcdef01234567',
    repository: repo,
    repository_owner: owner,
    repository_id: '123456',
    repository_owner_id: '654321',
    run_id: '987654321',
    run_number: '42',
    run_attempt: '1',
    actor: 'octocat',
    actor_id: '583231',
    workflow: 'release',
    workflow_ref: `${repo}/.github/workflows/release.yml@refs/heads/main`,
    event_name: 'push',
    ref_type: 'branch',
    job_workflow_ref: `${repo}/.github/workflows/release.yml@refs/heads/main`,
    runner_environment: 'github-hosted',
    ...overrides,
  }
}

export function kubernetesClaims(
  namespace = 'agents',
  serviceAccount = 'runner',
  overrides: Record<string, unknown> = {},
) {
  return {
    sub: `system:serviceaccount:${namespace}:${serviceAccount}`,
    aud: ['https://hivemind.example.com'],
    'kubernetes.io': {
      namespace,
      pod: {
        name: `${serviceAccount}-7d9c7b9d4f-x2x9z`,
        uid: '0b3c2c4e-2f1a-4d8e-9a55-0f7c0f6c1a11',
      },
      serviceaccount: { name: serviceAccount, uid: '5e1a3f5c-8a0e-4d1b-9c9b-3b5f0a1e2d44' },
    },
    ...overrides,
  }
}

export function modalClaims(workspaceId = 'ac-12345abcd', overrides: Record<string, unknown> = {}) {
  return {
    sub: `modal:workspace_id:${workspaceId}:environment_name:main:app_name:agent-runner:function_name:run:container_id:ta-01ABC`,
    aud: 'https://oidc.modal.com',
    workspace_id: workspaceId,
    environment_id: 'en-1234',
    environment_name: 'main',
    app_id: 'ap-1234',
    app_name: 'agent-runner',
    function_id: 'fu-1234',
    function_name: 'run',
    container_id: 'ta-01ABC',
    ...overrides,
  }
}

/** Modal ID tokens live about 48 hours. */
export const MODAL_TOKEN_TTL_SECONDS = 48 * 3600
