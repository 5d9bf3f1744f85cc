import CThk

/// The core's error codes (`thk_status` in native/include/thk.h), one case each, same numbers.
/// Everything the core refuses (bad input, misuse) arrives as one of these; none of them crash.
public enum ThkError: Int32, Error, CaseIterable, CustomStringConvertible {
    case argument = -1, buffer = -2
    case headerLength = -10, headerMagic = -11, headerVersion = -12, headerKind = -13, headerCRC = -14
    case headerField = -15, wrongKind = -16, priorMismatch = -17
    case malformed = -20, missingReference = -21, stale = -22
    case notFinite = -30, timestamp = -31
    case keyLength = -40, truncated = -41, garbage = -42, forged = -43, duplicate = -44, tooOld = -45
    case otherSession = -46, frameMalformed = -47, oversized = -48, cryptoInit = -49
    case singular = -60, degenerateHull = -61

    /// The core's own name for the code (`thk_status_name`), e.g. "missing_reference".
    public var name: String { String(cString: thk_status_name(rawValue)) }
    public var description: String { "\(name) (\(rawValue))" }

    /// A status of the core: non-negative passes through (0, or 1 from the pop calls), negative throws.
    @discardableResult
    static func check(_ status: Int32) throws -> Int32 {
        if status >= 0 { return status }
        guard let error = ThkError(rawValue: status) else {
            // the binding is behind the header: a test (ThkErrorTests) keeps the two in step
            preconditionFailure("the native core returned status \(status), unknown to ThkError")
        }
        throw error
    }
}

/// One zero-filled C struct on the heap, allocated once: the core's states are large (a decoder
/// ~14 KB, a frame receiver ~140 KB) and must not be copied per call.
final class CBox<T> {
    let pointer: UnsafeMutablePointer<T>

    init() {
        let raw = UnsafeMutableRawPointer.allocate(byteCount: MemoryLayout<T>.size, alignment: MemoryLayout<T>.alignment)
        raw.initializeMemory(as: UInt8.self, repeating: 0, count: MemoryLayout<T>.size)
        pointer = raw.bindMemory(to: T.self, capacity: 1)
    }

    deinit { pointer.deallocate() }
}

/// libsodium starts once per process (thread-safe); every transport call goes through this first.
enum Crypto {
    private static let status: Int32 = thk_crypto_init()
    static func start() throws { try ThkError.check(status) }
}
