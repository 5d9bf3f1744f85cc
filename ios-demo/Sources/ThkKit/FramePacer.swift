/// Render ticks at the stream's frame rate: at each tick the newest code decoded since the last
/// one is rendered, or the last one again when none came (never waiting for the network). Ticks
/// missed because rendering fell behind are skipped, not caught up, and counted.
public struct FramePacer {
    public struct Counts: Equatable {
        public var ticks: UInt64 = 0       // render ticks taken
        public var fresh: UInt64 = 0       // ticks that rendered a new code
        public var repeated: UInt64 = 0    // ticks that rendered the last code again (none arrived)
        public var superseded: UInt64 = 0  // decoded codes not rendered: a newer one came in the same tick
        public var skipped: UInt64 = 0     // ticks missed because the caller came late
    }

    public let interval: Double
    public private(set) var nextTick: Double
    public private(set) var counts = Counts()
    private var codesThisTick = 0

    public init(framesPerSecond: Double, start: Double) {
        precondition(framesPerSecond > 0, "a stream header's frame rate is > 0")
        interval = 1 / framesPerSecond
        nextTick = start
    }

    /// A code was decoded (call before `tick`).
    public mutating func decoded() { codesThisTick += 1 }

    /// Take the tick due at `nextTick` (call at or after it); true when a new code is to be
    /// rendered. Moves `nextTick` on, past any ticks already missed.
    @discardableResult
    public mutating func tick(now: Double) -> Bool {
        counts.ticks += 1
        let fresh = codesThisTick > 0
        if fresh {
            counts.fresh += 1
            counts.superseded += UInt64(codesThisTick - 1)
        } else {
            counts.repeated += 1
        }
        codesThisTick = 0
        nextTick += interval
        if now >= nextTick {
            let missed = ((now - nextTick) / interval).rounded(.down) + 1
            counts.skipped += UInt64(missed)
            nextTick += missed * interval
        }
        return fresh
    }
}
