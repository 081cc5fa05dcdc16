/** One step of an apply: a shell command and its exact inverse. Built by each layer for its own kinds. */
export interface ApplyStep {
  /** What a person reads in progress output and error reports. */
  description: string;
  command: string;
  undo: string;
  /**
   * Run at the end of a rollback when this step was started, after every undo:
   * a service restarted part-way is started again from the restored files.
   */
  recover?: string;
}
