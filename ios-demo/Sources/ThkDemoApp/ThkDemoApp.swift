// The iOS demo app (also runs on macOS 13+). Built where SwiftUI, AVFoundation, Vision and Core ML
// exist: by .github/workflows/ios.yml on a macOS runner, NOT built or run on Linux, where this
// target is the stub below so that `swift build` of the package keeps working.
#if canImport(SwiftUI) && canImport(AVFoundation) && canImport(Vision) && canImport(CoreML)
import Foundation
import SwiftUI
import ThkDemoUI

struct ThkDemoApp: App {
    var body: some Scene {
        WindowGroup { ContentView() }
    }
}

@main
enum Main {
    /// `ThkDemoApp --check-bundle`: load the app bundle's graphs ($THK_APP_BUNDLE or the app's
    /// resources), run them once, print where Core ML placed them, and exit (the macOS workflow).
    static func main() {
        guard CommandLine.arguments.contains("--check-bundle") else {
            ThkDemoApp.main()
            return
        }
        Task {
            do {
                print(try await checkBundle())
                exit(0)
            } catch {
                print("error: \(error)")
                exit(2)
            }
        }
        dispatchMain()
    }
}
#else
@main
enum ThkDemoApp {
    static func main() {
        print("ThkDemoApp needs SwiftUI, AVFoundation, Vision and Core ML (iOS 16 / macOS 13); "
              + "it is built on a Mac by .github/workflows/ios.yml. On this platform use the ThkKit library.")
    }
}
#endif
