import Foundation

/// The receiving app's session (connect, receive, re-anchor, stats): UDP -> session -> decoder ->
/// motion against the anchor, paced at the stream's frame rate. What the generator graph gets per
/// render tick is `Tick.motion`. Learned-keypoint streams only, as the Python live receiver.
public final class LiveReceiver {
    public enum State: Equatable {
        case idle
        case streaming
        case ended(String)  // "sender closed", "sender silent"
    }

    public struct Tick {
        public let motion: DrivingMotion   // the generator's driving keypoints and Jacobians
        public let frame: FrameInfo        // the code it comes from
        public let fresh: Bool             // false: the last code again (nothing new arrived)
    }

    public struct Stats {
        public var transport: ReceiverStats
        public var decoder: DecoderStats?
        public var pacing: FramePacer.Counts
        public var motionErrors: UInt64    // codes the motion refused (a singular anchor Jacobian)
        public var reanchors: Int
    }

    public let receiver: UDPReceiver
    public let idleTimeoutS: Double
    public private(set) var state = State.idle
    public private(set) var header: StreamHeader?
    private let expectedModel: [UInt8]?
    private let source: (keypoints: [Float], jacobians: [Float])
    private let motionConfig: MotionConfig
    private var decoder: CodeDecoder?
    private var motion: AnchoredMotion?
    private var pacer: FramePacer?
    private var latest: (code: LearnedCode, frame: FrameInfo)?
    private var last: Tick?
    private var lastPacketAt = 0.0
    private var motionErrors: UInt64 = 0
    private let reanchorLock = NSLock()
    private var reanchorRequested = false

    /// `expectedModelShaPrefix`: the first 8 bytes of the SHA-256 of the model whose graphs render
    /// (nil: any). `sourceKeypoints` / `sourceJacobians`: the portrait's, from the source encoder.
    public init(receiver: UDPReceiver, expectedModelShaPrefix: [UInt8]?, sourceKeypoints: [Float],
                sourceJacobians: [Float], motion: MotionConfig = MotionConfig(), idleTimeoutS: Double = 5) {
        self.receiver = receiver
        expectedModel = expectedModelShaPrefix
        source = (sourceKeypoints, sourceJacobians)
        motionConfig = motion
        self.idleTimeoutS = idleTimeoutS
    }

    /// Waits for a sender's session start and checks its stream: throws `SessionError.timeout`,
    /// a `ThkError` of the header, `SessionError.otherKind` or `.otherModel`.
    @discardableResult
    public func connect(timeoutS: Double) throws -> SessionStart {
        let start = try receiver.waitSession(timeoutS: timeoutS)
        let header = try StreamHeader(bytes: start.header)
        guard header.kind == .learned else { throw SessionError.otherKind(expected: .learned, got: header.kind) }
        if let expectedModel, expectedModel != header.modelShaPrefix {
            throw SessionError.otherModel(expected: hex(expectedModel), got: hex(header.modelShaPrefix))
        }
        guard 2 * header.numKeypoints == source.keypoints.count else {
            throw SessionError.otherModel(expected: "\(source.keypoints.count / 2) keypoints", got: "\(header.numKeypoints)")
        }
        decoder = try CodeDecoder(header: header)
        motion = try AnchoredMotion(sourceKeypoints: source.keypoints, sourceJacobians: source.jacobians, config: motionConfig)
        let now = monotonicSeconds()
        pacer = FramePacer(framesPerSecond: header.framesPerSecond, start: now)
        self.header = header
        latest = nil
        last = nil
        lastPacketAt = now
        state = .streaming
        return start
    }

    /// Waits for the next render tick, taking every frame due before it; the tick's motion (nil
    /// until the first code arrived, or once the session ended: see `state`).
    public func nextTick() throws -> Tick? {
        guard state == .streaming, let decoder, var pacer else {
            if state == .idle { throw SessionError.notConnected }
            return nil
        }
        while let packet = try receiver.receive(timeoutS: max(0, pacer.nextTick - monotonicSeconds())) {
            lastPacketAt = monotonicSeconds()
            guard let frame = try? decoder.decode(packet), let code = try? decoder.learnedCode() else {
                continue  // counted in decoder.stats; the next keyframe resyncs
            }
            latest = (code, frame)
            pacer.decoded()
        }
        reanchorLock.lock()
        if reanchorRequested, let motion {
            motion.reanchor()
            reanchorRequested = false
        }
        reanchorLock.unlock()
        let now = monotonicSeconds()
        let fresh = pacer.tick(now: now)
        self.pacer = pacer
        if fresh, let latest, let motion {
            do {
                last = Tick(motion: try motion.drive(latest.code), frame: latest.frame, fresh: true)
            } catch {
                motionErrors += 1
            }
        } else if let previous = last {
            last = Tick(motion: previous.motion, frame: previous.frame, fresh: false)
        }
        if receiver.peerClosed && receiver.session.gapDeadline == nil {
            state = .ended("sender closed")
        } else if now - lastPacketAt > idleTimeoutS {
            state = .ended("sender silent")
        }
        return last
    }

    /// The next rendered code becomes the anchor (the user re-centres the avatar). Safe from any
    /// thread: it takes effect at the next tick.
    public func reanchor() {
        reanchorLock.lock()
        reanchorRequested = true
        reanchorLock.unlock()
    }

    public var stats: Stats {
        Stats(transport: receiver.stats, decoder: decoder?.stats, pacing: pacer?.counts ?? FramePacer.Counts(),
              motionErrors: motionErrors, reanchors: motion?.reanchors ?? 0)
    }
}

func hex(_ bytes: [UInt8]) -> String {
    let digits = Array("0123456789abcdef")
    return String(bytes.flatMap { [digits[Int($0 >> 4)], digits[Int($0 & 15)]] })
}
