// The watch loop's state machine: when to rebuild, and never two builds at once.
//
//                                     start (the first build)
//                                                  │
//   ┌──────┐  change   ┌────────────┐  timer,      ▼    ┌─────────┐  change   ┌────────┐
//   │ idle │ ────────▶ │ debouncing │ ──────────────▶   │ running │ ────────▶ │ queued │ ──┐
//   └──────┘ ◀──────── └────────────┘  relevant         └─────────┘           └────────┘   │
//      ▲      timer,      │   ▲   ▲                          │                  │   ▲      │
//      │      nothing     └───┘   │            done          │                  │   └──────┘
//      │      relevant   change:  └──────────────────────────┼──────────────────┘   change
//      │             restart the timer                       │
//      └─────────────────────────────────────────────────────┘
//                                  done
//
//   stop: idle, debouncing ──▶ stopped;  running, queued ──▶ stopping ──(done)──▶ stopped
//
// A burst of changes (an editor's save, a package upgrade renaming 50 libraries into
// place) restarts the timer, so it gives one build after the burst. A change during a
// build moves to `queued`, never to a second concurrent build; when the build is done,
// `queued` goes back to `debouncing` rather than straight to `running`, so changes that
// straddle the end of a build are still coalesced, and chokidar's 50 ms throttle of
// repeated `change` events cannot hide a last write from the next build (its start is a
// full debounce after the last event it was told about). Any other pairing of state and
// event is a bug in the caller, and throws.

export type StateName = 'idle' | 'debouncing' | 'running' | 'queued' | 'stopping' | 'stopped';
export type MachineEvent = 'change' | 'timer' | 'done' | 'stop';

export interface MachineHooks {
  /** Start (or restart) the debounce timer; the machine calls `fire('timer')` when it runs out. */
  arm(ms: number): void;
  disarm(): void;
  /** The timer ran out: is anything that arrived worth a build? false goes back to idle. */
  relevant(): boolean;
  /** Start a build; the caller sends `done` when it is over (success or not). */
  build(): void;
  /** The loop has stopped: no build is running and none will start. */
  stopped(): void;
}

export class UnexpectedTransition extends Error {
  constructor(readonly state: StateName, readonly event: MachineEvent) {
    super(`watch: '${event}' cannot happen in state '${state}' (a bug in jail's watch loop, please report it)`);
    this.name = 'UnexpectedTransition';
  }
}

export class WatchMachine {
  #state: StateName = 'idle';
  #transitions = 0;

  constructor(private readonly debounceMs: number, private readonly hooks: MachineHooks) {}

  get state(): StateName {
    return this.#state;
  }

  /** How many transitions have happened (tests use it to see the machine is not spinning). */
  get transitions(): number {
    return this.#transitions;
  }

  fire(event: MachineEvent): void {
    const from = this.#state;
    const to = this.#next(from, event);
    this.#transitions++;
    this.#state = to;
    // Effects after the state is set, so a hook that fires an event sees the new state.
    switch (`${from}>${event}` as const) {
      case 'idle>change':
      case 'debouncing>change':
      case 'queued>done':
        this.hooks.arm(this.debounceMs);
        break;
      case 'debouncing>timer':
        if (to === 'running') this.hooks.build();
        break;
      case 'debouncing>stop':
        this.hooks.disarm();
        this.hooks.stopped();
        break;
      case 'idle>stop':
      case 'stopping>done':
        this.hooks.stopped();
        break;
      default:
        break;
    }
  }

  /** Start with a build (the first one), as if a change had been debounced. */
  startWithBuild(): void {
    if (this.#state !== 'idle') throw new UnexpectedTransition(this.#state, 'timer');
    this.#state = 'running';
    this.#transitions++;
    this.hooks.build();
  }

  #next(s: StateName, e: MachineEvent): StateName {
    switch (s) {
      case 'idle':
        if (e === 'change') return 'debouncing';
        if (e === 'stop') return 'stopped';
        break;
      case 'debouncing':
        if (e === 'change') return 'debouncing';
        if (e === 'timer') return this.hooks.relevant() ? 'running' : 'idle';
        if (e === 'stop') return 'stopped';
        break;
      case 'running':
        if (e === 'change') return 'queued';
        if (e === 'done') return 'idle';
        if (e === 'stop') return 'stopping';
        break;
      case 'queued':
        if (e === 'change') return 'queued';
        if (e === 'done') return 'debouncing';
        if (e === 'stop') return 'stopping';
        break;
      case 'stopping':
        if (e === 'change' || e === 'stop') return 'stopping';
        if (e === 'done') return 'stopped';
        break;
      case 'stopped':
        // Late file events after close, or a second Ctrl-C: nothing to do.
        if (e === 'change' || e === 'stop') return 'stopped';
        break;
    }
    throw new UnexpectedTransition(s, e);
  }
}
