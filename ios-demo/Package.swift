// swift-tools-version:5.9
// The iOS demo's Swift package (issue 15 item 3).
//   CThk        the portable C core (native/src, native/include/thk.h; symlinked, not copied), libsodium
//   ThkKit      the platform-neutral Swift layer: codec, transport, motion, UDP, the receiver session,
//               frame pacing; builds and tests on Linux (swift test) and on Apple platforms
//   ThkBench    per-frame decode + relative motion timing (swift run -c release ThkBench)
//   ThkDemoUI   the app's parts (SwiftUI, AVFoundation, Vision, Core ML): compiled only where those
//               frameworks exist (the macOS workflow); empty elsewhere
//   ThkDemoApp  the app itself (its @main; `--check-bundle` loads the app bundle's graphs and
//               reports where Core ML placed them); elsewhere a stub that says so
import PackageDescription

let package = Package(
    name: "ThkDemo",
    platforms: [.macOS(.v13), .iOS(.v16)],
    products: [
        .library(name: "ThkKit", targets: ["ThkKit"]),
        .library(name: "ThkDemoUI", targets: ["ThkDemoUI"]),
        .executable(name: "ThkDemoApp", targets: ["ThkDemoApp"]),
    ],
    targets: [
        .target(
            name: "CThk",
            // no fused multiply-add: the encoder's quantization and the motion maths follow the
            // Python's float steps exactly (native/README.md); clang contracts by default on arm64
            cSettings: [.unsafeFlags(["-ffp-contract=off"])],
            linkerSettings: [.linkedLibrary("sodium"), .linkedLibrary("m", .when(platforms: [.linux]))]),
        .target(name: "ThkKit", dependencies: ["CThk"]),
        .executableTarget(name: "ThkBench", dependencies: ["ThkKit"]),
        .target(name: "ThkDemoUI", dependencies: ["ThkKit"]),
        .executableTarget(name: "ThkDemoApp", dependencies: ["ThkDemoUI"]),
        .testTarget(name: "ThkKitTests", dependencies: ["ThkKit", "CThk"]),
    ],
    cLanguageStandard: .c11
)
