// Templates the daemon and CLI tests write into <home>/templates/: short, deterministic, and
// each made for one kind of check (a quick success, a failure, a long sleep to cancel, a
// human step, a step that fails until a file exists, a steady stream of output).
export const TEMPLATES = {
  quick: `name: quick
description: one short shell step
steps:
  - name: hello
    type: shell
    run: echo "quick $ATLAS_TASK_ID"
`,
  three: `name: three
description: three shell steps with output
steps:
  - name: one
    type: shell
    run: echo out-1
  - name: two
    type: shell
    run: echo out-2; echo err-2 >&2
  - name: three
    type: shell
    run: echo out-3
`,
  failing: `name: failing
description: a shell step that fails
steps:
  - name: boom
    type: shell
    run: echo about to fail; exit 3
`,
  sleeper: `name: sleeper
description: one long sleep, for cancel
steps:
  - name: nap
    type: shell
    run: sleep 60
`,
  slow4: `name: slow4
description: several short sleep steps
steps:
  - name: s1
    type: shell
    run: sleep 0.3; echo step-1
  - name: s2
    type: shell
    run: sleep 0.3; echo step-2
  - name: s3
    type: shell
    run: sleep 0.3; echo step-3
  - name: s4
    type: shell
    run: sleep 0.3; echo step-4
`,
  review: `name: review
description: make something, then ask a human
steps:
  - name: make
    type: shell
    run: echo "made $ATLAS_ATTEMPT" >> made.txt
  - name: review
    type: human
    prompt: Look at made.txt
  - name: ship
    type: shell
    run: echo shipped > shipped.txt
`,
  stream: `name: stream
description: a steady stream of long output lines (a big history for a follower to catch up on), then a short step
steps:
  - name: burst
    type: shell
    run: pad=$(printf '%01000d' 0); i=1; while [ $i -le 300 ]; do echo "line-$i $pad"; i=$((i+1)); sleep 0.005; done
  - name: tail
    type: shell
    run: echo line-301
`,
  marker: `name: marker
description: fails until the workspace holds a file named marker
steps:
  - name: check
    type: shell
    run: test -f marker || { echo "no marker yet" >&2; exit 4; }
  - name: after
    type: shell
    run: echo after
`,
} as const;

export type TemplateName = keyof typeof TEMPLATES;
