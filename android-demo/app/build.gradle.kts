// The one app module: CameraX -> MediaPipe face landmarks -> sender graph (LiteRT) -> the core (JNI)
// -> UDP, and UDP -> the core -> generator graph (LiteRT: GPU, else NNAPI, else CPU, reported) ->
// SurfaceView. Sources: src/main (platform API only: also built by build-here.sh), src/full (the
// parts that need Google's Maven libraries), ../core (the Kotlin binding of the C core), the C core
// and its JNI through CMake (src/main/cpp), libsodium built for Android by src/main/cpp/build-libsodium.sh.
plugins {
    id("com.android.application")
    id("org.jetbrains.kotlin.android")
}

android {
    namespace = "org.talkinghead.demo"
    compileSdk = 35
    ndkVersion = "27.2.12479018"

    defaultConfig {
        applicationId = "org.talkinghead.demo"
        minSdk = 24          // MediaPipe Tasks' minimum
        targetSdk = 35
        versionCode = 1
        versionName = "0.1"
        ndk { abiFilters += listOf("arm64-v8a", "x86_64") }
        externalNativeBuild {
            cmake {
                // libsodium for the ABI being built (build-libsodium.sh puts it here)
                arguments += listOf("-DTHK_SODIUM_ROOT=${projectDir}/src/main/cpp/libsodium-android")
            }
        }
    }

    sourceSets["main"].apply {
        java.srcDirs("src/main/kotlin", "src/full/kotlin", "../core/src/main/kotlin")
        // assets: the model bundle (python -m export --bundle android --bundle-dir android-demo/app/src/main),
        // the face landmarker model (downloaded by the workflow), the golden streams for the self-test
        assets.srcDirs("src/main/assets", "../../tests/golden")
    }
    sourceSets["test"].java.srcDirs("src/test/kotlin")

    externalNativeBuild {
        cmake {
            path = file("src/main/cpp/CMakeLists.txt")
            version = "3.22.1"
        }
    }

    buildTypes {
        release {
            isMinifyEnabled = false
        }
    }
    compileOptions {
        sourceCompatibility = JavaVersion.VERSION_17
        targetCompatibility = JavaVersion.VERSION_17
    }
    kotlinOptions { jvmTarget = "17" }
    androidResources { noCompress += listOf("tflite", "task") }
    packaging { jniLibs { useLegacyPackaging = false } }  // .so stored uncompressed, 16 KB aligned
}

dependencies {
    val camerax = "1.4.1"
    implementation("androidx.camera:camera-core:$camerax")
    implementation("androidx.camera:camera-camera2:$camerax")
    implementation("androidx.camera:camera-lifecycle:$camerax")
    implementation("androidx.lifecycle:lifecycle-runtime:2.8.7")
    implementation("com.google.mediapipe:tasks-vision:0.10.20")
    implementation("com.google.ai.edge.litert:litert:1.0.1")
    implementation("com.google.ai.edge.litert:litert-gpu:1.0.1")
    implementation("com.google.ai.edge.litert:litert-gpu-api:1.0.1")
    testImplementation("junit:junit:4.13.2")
}
