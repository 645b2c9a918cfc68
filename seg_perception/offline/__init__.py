"""segment_offline's job: recorded data (image folders, videos, bags) to pre-labels.

- sources:  image and video files read frame by frame, the sample photos
- frames:   sources (image folders, images, videos, 'samples', ROS 2 / ROS 1 bags read with
            rosbags) -> FrameRef, each holding a picklable payload decoded where it is segmented
- segment:  FrameSegmenter (payload -> arrays), the same object in this process and on Ray actors
- formats:  per-frame writers: png, CVAT "Segmentation mask 1.1", COCO (RLE)
- index:    index.csv (also what --resume reads) and classes.json
- review:   uncertainty per frame and review.csv, worst frames first
- bagout:   a rosbag2 (mcap) with the source images, masks, confidence, color masks and class map
- progress: a progress bar on a terminal, periodic lines otherwise
- runner:   the job: names, --every/--limit/--resume, ordered writing, the summary
- ray_exec: frames distributed over a Ray cluster, one model per actor, ordered results

May import: `wire`, `model`, `engine`, rosbags, tqdm, ray and the format libraries (lazily).
Never rclpy, nor `live`, `deploy`, `ros` or `apps`.
"""
